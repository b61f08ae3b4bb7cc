//! SQLite: the event store (appends, stream and page reads, the head).

use async_trait::async_trait;
use sqlx::{QueryBuilder, Sqlite};
use tokio::sync::watch;

use super::{
    EVENT_COLUMNS, SqliteStore, append_in, event_from_row, first_use, push_in_list, reads, to_i64,
    to_u64, validate,
};
use crate::store::{
    AppendRequest, AppendResult, EventStore, Page, Position, ReadBudget, RecordedEvent, StoreError,
    StreamId,
};

/// Sequences per `IN (...)` list.
const ID_LIST_CHUNK: usize = 1000;

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(&self, req: AppendRequest) -> Result<AppendResult, StoreError> {
        validate(&req, self.max_event_bytes)?;
        // IMMEDIATE takes the write lock now, so the version check and the insert see
        // the same state even if another process shares the file.
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let result = append_in(&mut tx, &req).await?;
        tx.commit().await?;
        let types = req.events.iter().map(|e| e.event_type.as_str());
        self.heads.committed(types, result.last_sequence);
        Ok(result)
    }

    async fn append_inline(
        &self,
        req: AppendRequest,
        inline: &dyn crate::store::InlineProjector,
    ) -> Result<(AppendResult, Vec<crate::store::InlineOutcome>), crate::store::InlineAppendError>
    {
        self.append_inline_in(req, inline).await
    }

    fn supports_inline(&self) -> bool {
        true
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        let mut conn = self.reader.acquire().await?;
        let version = reads::stream_version(&mut conn, stream.as_str()).await?;
        to_u64(version, "stream version")
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
    ) -> Result<(u64, Vec<RecordedEvent>), StoreError> {
        let mut tx = self.reader.begin().await?;
        let version = reads::stream_version(&mut tx, stream.as_str()).await?;
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = ? AND stream_version >= ? \
             AND stream_version <= ? ORDER BY stream_version"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(stream.as_str())
            .bind(to_i64(from_version)?)
            .bind(version)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let events = rows.iter().map(event_from_row).collect::<Result<_, _>>()?;
        Ok((to_u64(version, "stream version")?, events))
    }

    async fn read_stream_page(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<(u64, Vec<RecordedEvent>), StoreError> {
        self.stream_page(stream, from_version, limit).await
    }

    async fn read_page(
        &self,
        after: Position,
        types: Option<&[String]>,
        budget: ReadBudget,
    ) -> Result<Page, StoreError> {
        let mut tx = self.reader.begin().await?;
        let head: Position = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events")
            .fetch_one(&mut *tx)
            .await?;
        let scan = reads::Scan {
            after,
            upto: Some(head),
            types,
            stream: None,
        };
        let page = reads::page_in(&mut tx, scan, budget.events, budget.bytes).await?;
        tx.commit().await?;
        Ok(Page::scanned(page.events, page.exhausted, head, after))
    }

    async fn read_events(
        &self,
        sequences: &[Position],
        max_bytes: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut sorted = sequences.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        sorted.truncate(ID_LIST_CHUNK);
        let mut tx = self.reader.begin().await?;
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT seq, octet_length(data) + octet_length(metadata) FROM events WHERE seq IN ",
        );
        push_in_list(&mut qb, &sorted);
        qb.push(" ORDER BY seq");
        let sizes: Vec<(i64, i64)> = qb.build_query_as().fetch_all(&mut *tx).await?;
        let (count, _) = crate::store::page_cut(&sizes, max_bytes);
        let fitting: Vec<i64> = sizes[..count].iter().map(|&(seq, _)| seq).collect();
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("SELECT {EVENT_COLUMNS} FROM events WHERE seq IN "));
        push_in_list(&mut qb, &fitting);
        qb.push(" ORDER BY seq");
        let rows = qb.build().fetch_all(&mut *tx).await?;
        tx.commit().await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn head(&self) -> Result<Position, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events")
                .fetch_one(&self.reader)
                .await?,
        )
    }

    async fn idempotency_key(
        &self,
        team: &str,
        key: &str,
    ) -> Result<Option<(String, AppendResult)>, StoreError> {
        first_use(&self.reader, team, key).await
    }

    async fn position_at_time(&self, micros: i64) -> Result<Position, StoreError> {
        // A scan, but once per deploy of a subscription that starts at a time.
        let first: Option<i64> =
            sqlx::query_scalar("SELECT MIN(seq) FROM events WHERE created_at >= ?")
                .bind(micros)
                .fetch_one(&self.reader)
                .await?;
        match first {
            Some(seq) => Ok(seq - 1),
            None => self.head().await,
        }
    }

    fn watch_head(&self) -> watch::Receiver<Position> {
        self.heads.subscribe()
    }

    fn watch_types(&self, types: &[String]) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        Some(self.heads.watcher(types))
    }

    fn last_of_types(&self, types: &[String]) -> Option<Position> {
        Some(self.heads.last_of_types(types))
    }
}
