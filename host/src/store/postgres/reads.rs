//! PostgreSQL: bounded reads. Byte-bounded pages of ordered events inside a
//! caller's read transaction, a page of one stream, and the consistent document
//! read of request-driven guest reads, each within a budget of events and bytes.
//! Only sequenced events are read (the log joined to the events).

use sqlx::postgres::PgConnection;
use sqlx::{Postgres, QueryBuilder};

use super::PgStore;
use super::convert::{BindKey, EVENT_COLUMNS, EVENT_FROM, event_from_row, to_i64, to_u64};
use crate::store::{
    BUDGET_CHUNK, DocOf, DocRead, Later, MAX_STREAM_PAGE_BYTES, PageIn, Position, ProjectionKey,
    ReadBudget, RecordedEvent, StoreError, StreamId,
};

/// A read-only transaction that sees one snapshot for all its statements.
pub(super) const SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

/// The last sequence given out, in the caller's transaction.
pub(super) async fn head_in(conn: &mut PgConnection) -> Result<Position, StoreError> {
    Ok(sqlx::query_scalar("SELECT seq FROM sequencer WHERE id = 1")
        .fetch_one(conn)
        .await?)
}

/// The stream's version among its ordered events up to `head` (0 if it has none),
/// in the caller's transaction: events committed but not yet ordered do not count.
pub(super) async fn stream_version(
    conn: &mut PgConnection,
    stream: &str,
    head: Position,
) -> Result<u64, StoreError> {
    let v: Option<i64> = sqlx::query_scalar(
        "SELECT e.stream_version FROM events e WHERE e.stream_id = $1 AND EXISTS \
         (SELECT 1 FROM log l WHERE l.position = e.position AND l.seq <= $2) \
         ORDER BY e.stream_version DESC LIMIT 1",
    )
    .bind(stream)
    .bind(head)
    .fetch_optional(conn)
    .await?;
    to_u64(v.unwrap_or(0), "stream version")
}

/// The stream's committed version (0 if it does not exist), as appends check it:
/// it counts events still waiting behind the fence.
pub(super) async fn committed_version(
    conn: &mut PgConnection,
    stream: &str,
) -> Result<u64, StoreError> {
    let v: Option<i64> = sqlx::query_scalar("SELECT version FROM streams WHERE stream_id = $1")
        .bind(stream)
        .fetch_optional(conn)
        .await?;
    to_u64(v.unwrap_or(0), "stream version")
}

/// Which events a page query reads: after a sequence, up to another, of some types,
/// of one stream.
#[derive(Debug, Clone, Copy)]
pub(super) struct Scan<'a> {
    /// Only events after this sequence.
    pub after: Position,
    /// Only events up to this sequence.
    pub upto: Position,
    /// Only events of these types (all if `None`).
    pub types: Option<&'a [String]>,
    /// Only the events of this stream.
    pub stream: Option<&'a str>,
}

impl Scan<'_> {
    /// Appends ` WHERE ...` and the order of the scan's query.
    fn push_where(&self, qb: &mut QueryBuilder<Postgres>) {
        qb.push(" WHERE l.seq > ").push_bind(self.after);
        qb.push(" AND l.seq <= ").push_bind(self.upto);
        if let Some(stream) = self.stream {
            qb.push(" AND e.stream_id = ").push_bind(stream.to_owned());
        }
        if let Some(types) = self.types {
            qb.push(" AND l.event_type = ANY(")
                .push_bind(types.to_vec())
                .push(")");
        }
        qb.push(" ORDER BY l.seq");
    }
}

/// Up to `limit` events of `scan`, stopping before the event that would take the
/// page's data and metadata past `max_bytes` (the first is always included). Sizes
/// are read first (`octet_length` of a stored value reads its header, not the
/// data), so a page of huge events is cut before any of them is loaded.
pub(super) async fn page_in(
    conn: &mut PgConnection,
    scan: Scan<'_>,
    limit: usize,
    max_bytes: usize,
) -> Result<PageIn, StoreError> {
    let limit = limit.max(1);
    // No parallel workers for a page: PostgreSQL planned the sizes query as a
    // Gather Merge of two workers whose start-up took ~160 ms of a 330 ms query on
    // 2 busy cores (the nested loop itself took ~60 ms); without them the scan of
    // 1M events ran at 206k events/s instead of 106k. Ends with the transaction.
    sqlx::query("SET LOCAL max_parallel_workers_per_gather = 0")
        .execute(&mut *conn)
        .await?;
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(format!(
        "SELECT l.seq, (octet_length(e.data) + octet_length(e.metadata))::bigint FROM {EVENT_FROM}"
    ));
    scan.push_where(&mut qb);
    qb.push(" LIMIT ").push_bind(to_i64(limit as u64)?);
    let sizes: Vec<(i64, i64)> = qb.build_query_as().fetch_all(&mut *conn).await?;
    let (count, cut) = crate::store::page_cut(&sizes, max_bytes);
    let mut events = Vec::with_capacity(count);
    if let Some(last) = cut {
        let mut qb: QueryBuilder<Postgres> =
            QueryBuilder::new(format!("SELECT {EVENT_COLUMNS} FROM {EVENT_FROM}"));
        Scan { upto: last, ..scan }.push_where(&mut qb);
        qb.push(" LIMIT ").push_bind(to_i64(count as u64)?);
        for row in &qb.build().fetch_all(&mut *conn).await? {
            events.push(event_from_row(row)?);
        }
    }
    Ok(PageIn {
        events,
        exhausted: count == sizes.len() && sizes.len() < limit,
    })
}

/// Every event of `scan` within `budget`, a byte-bounded page at a time in the
/// caller's transaction (see [`crate::store::Within`]).
pub(super) async fn read_within(
    conn: &mut PgConnection,
    scan: Scan<'_>,
    budget: ReadBudget,
) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
    let mut within = crate::store::Within::new(scan.after, budget);
    loop {
        let (after, want, room) = within.ask();
        let page = page_in(conn, Scan { after, ..scan }, want, room).await?;
        if let Some(done) = within.took(page) {
            return Ok(done);
        }
    }
}

/// A version's position and one of its documents, in the caller's transaction (so
/// a write-model read sees them at one moment).
async fn position_and_doc(
    conn: &mut PgConnection,
    key: &ProjectionKey,
    id: &str,
) -> Result<(Position, Option<String>), StoreError> {
    let (position, set): (Position, Option<i64>) =
        sqlx::query_as("SELECT position, doc_set FROM progress WHERE name = $1 AND version = $2")
            .bind_key(key)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("progress of {key}")))?;
    let Some(set) = set else {
        return Ok((position, None));
    };
    let doc: Option<String> =
        sqlx::query_scalar("SELECT body::text FROM documents WHERE set_id = $1 AND id = $2")
            .bind(set)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok((position, doc))
}

impl PgStore {
    /// [`EventStore::read_stream_page`](crate::store::EventStore::read_stream_page).
    pub(super) async fn stream_page(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<(u64, Vec<RecordedEvent>), StoreError> {
        let limit = limit.max(1);
        let mut tx = self.pool.begin_with(SNAPSHOT).await?;
        let version = committed_version(&mut tx, stream.as_str()).await?;
        let mut events: Vec<RecordedEvent> = Vec::new();
        let mut bytes = 0usize;
        let mut next = from_version.max(1);
        while events.len() < limit && bytes < MAX_STREAM_PAGE_BYTES && next <= version {
            let want = (limit - events.len()).min(BUDGET_CHUNK);
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM {EVENT_FROM} WHERE e.stream_id = $1 \
                 AND e.stream_version >= $2 AND e.stream_version <= $3 \
                 ORDER BY e.stream_version LIMIT $4"
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(stream.as_str())
                .bind(to_i64(next)?)
                .bind(to_i64(version)?)
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
        Ok((version, events))
    }

    /// [`DocumentStore::doc_read`](crate::store::DocumentStore::doc_read).
    pub(super) async fn read_doc_and_later(
        &self,
        key: &ProjectionKey,
        of: DocOf<'_>,
        later: Later<'_>,
    ) -> Result<DocRead, StoreError> {
        let (id, stream) = match of {
            DocOf::Id(id) => (id, None),
            DocOf::Stream(s) => (s.as_str(), Some(s.as_str())),
        };
        let mut tx = self.pool.begin_with(SNAPSHOT).await?;
        let (position, doc) = position_and_doc(&mut tx, key, id).await?;
        let head = head_in(&mut tx).await?;
        let stream_version = match stream {
            Some(s) => stream_version(&mut tx, s, head).await?,
            None => 0,
        };
        let scan = Scan {
            after: position,
            upto: head,
            types: Some(later.types),
            stream,
        };
        let later = read_within(&mut tx, scan, later.budget).await?;
        // Ends the transaction (and frees the connection) before any guest call.
        tx.commit().await?;
        Ok(DocRead {
            doc,
            position,
            head,
            stream_version,
            later,
        })
    }
}
