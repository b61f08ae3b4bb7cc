//! SQLite: bounded reads. A page of one stream, and the cursor of a consistent
//! document read (one read transaction held while its pages are read).

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, QueryBuilder, Sqlite, Transaction};

use super::{EVENT_COLUMNS, SqliteStore, event_from_row, push_in_list, to_i64, to_u64};
use crate::store::{
    DocRead, EventCursor, MAX_STREAM_PAGE_BYTES, Position, ProjectionKey, RecordedEvent,
    StoreError, StreamId,
};

/// Events fetched per query of a stream page, so the bytes budget is checked often
/// (sqlx hands a query's rows over at once).
const STREAM_CHUNK: usize = 100;

impl SqliteStore {
    /// [`EventStore::read_stream_page`](crate::store::EventStore::read_stream_page).
    pub(super) async fn stream_page(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<(u64, Vec<RecordedEvent>), StoreError> {
        let limit = limit.max(1);
        let mut tx = self.reader().begin().await?;
        let version: i64 = sqlx::query_scalar("SELECT version FROM streams WHERE stream_id = ?")
            .bind(stream.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .unwrap_or(0);
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = ? AND stream_version >= ? \
             AND stream_version <= ? ORDER BY stream_version LIMIT ?"
        );
        let mut events: Vec<RecordedEvent> = Vec::new();
        let mut bytes = 0usize;
        let mut next = from_version.max(1);
        while events.len() < limit && bytes < MAX_STREAM_PAGE_BYTES {
            let want = (limit - events.len()).min(STREAM_CHUNK);
            let rows = sqlx::query(AssertSqlSafe(sql.clone()))
                .bind(stream.as_str())
                .bind(to_i64(next)?)
                .bind(version)
                .bind(to_i64(want as u64)?)
                .fetch_all(&mut *tx)
                .await?;
            let got = rows.len();
            for row in &rows {
                let e = event_from_row(row)?;
                if bytes >= MAX_STREAM_PAGE_BYTES {
                    break;
                }
                bytes += e.data.len() + e.metadata.len();
                next = e.stream_version + 1;
                events.push(e);
            }
            if got < want {
                break;
            }
        }
        tx.commit().await?;
        Ok((to_u64(version, "stream version")?, events))
    }

    /// [`DocumentStore::doc_read`](crate::store::DocumentStore::doc_read).
    pub(super) async fn begin_doc_read(
        &self,
        key: &ProjectionKey,
        table: &str,
        id: &str,
        types: &[String],
    ) -> Result<DocRead, StoreError> {
        let mut tx = self.reader().begin().await?;
        let position: Position =
            sqlx::query_scalar("SELECT position FROM progress WHERE name = ? AND version = ?")
                .bind(&key.name)
                .bind(key.version)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("progress of {key}")))?;
        let doc: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT body FROM {table} WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let head: Position = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events")
            .fetch_one(&mut *tx)
            .await?;
        Ok(DocRead {
            doc,
            position,
            head,
            later: Box::new(Cursor {
                tx,
                after: position,
                head,
                types: types.to_vec(),
            }),
        })
    }
}

/// The later events of a consistent read, in the read's transaction.
struct Cursor {
    tx: Transaction<'static, Sqlite>,
    after: Position,
    head: Position,
    types: Vec<String>,
}

#[async_trait]
impl EventCursor for Cursor {
    async fn next_page(&mut self, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        if self.after >= self.head {
            return Ok(Vec::new());
        }
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("SELECT {EVENT_COLUMNS} FROM events WHERE seq > "));
        qb.push_bind(self.after)
            .push(" AND seq <= ")
            .push_bind(self.head)
            .push(" AND event_type IN ");
        push_in_list(&mut qb, &self.types);
        qb.push(" ORDER BY seq LIMIT ")
            .push_bind(to_i64(limit.max(1) as u64)?);
        let rows = qb.build().fetch_all(&mut *self.tx).await?;
        let events: Vec<RecordedEvent> =
            rows.iter().map(event_from_row).collect::<Result<_, _>>()?;
        self.after = match events.last() {
            Some(last) if events.len() >= limit.max(1) => last.sequence,
            _ => self.head,
        };
        Ok(events)
    }
}
