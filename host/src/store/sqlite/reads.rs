//! SQLite: bounded reads. A page of one stream, byte-bounded pages of events inside
//! a caller's read transaction, and the in-memory reads of request-driven guest reads
//! (a consistent document read), each within a budget of events and bytes.

use sqlx::sqlite::SqliteConnection;
use sqlx::{AssertSqlSafe, QueryBuilder, Sqlite};

use super::convert::BindKey;
use super::{EVENT_COLUMNS, SqliteStore, event_from_row, push_in_list, to_i64, to_u64};
use crate::store::{
    DocOf, DocRead, Later, MAX_STREAM_PAGE_BYTES, PageIn, Position, ProjectionKey, ReadBudget,
    RecordedEvent, StoreError, StreamId,
};

/// Events fetched per query of a stream page, so the bytes budget is checked often
/// (sqlx hands a query's rows over at once).
const STREAM_CHUNK: usize = 100;

/// The stream's version (0 if it does not exist), inside the caller's transaction.
pub(super) async fn stream_version(
    conn: &mut SqliteConnection,
    stream: &str,
) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT version FROM streams WHERE stream_id = ?")
            .bind(stream)
            .fetch_optional(conn)
            .await?
            .unwrap_or(0),
    )
}

/// Which events a page query reads: after a sequence, up to another, of some types,
/// of one stream.
#[derive(Debug, Clone, Copy)]
pub(super) struct Scan<'a> {
    /// Only events after this sequence.
    pub after: Position,
    /// Only events up to this sequence, if given.
    pub upto: Option<Position>,
    /// Only events of these types (all if `None`).
    pub types: Option<&'a [String]>,
    /// Only the events of this stream (then read in stream order, by its index).
    pub stream: Option<&'a str>,
}

impl Scan<'_> {
    /// Appends ` WHERE ...` and the order of the scan's query.
    fn push_where(&self, qb: &mut QueryBuilder<Sqlite>) {
        qb.push(" WHERE seq > ").push_bind(self.after);
        if let Some(upto) = self.upto {
            qb.push(" AND seq <= ").push_bind(upto);
        }
        if let Some(stream) = self.stream {
            qb.push(" AND stream_id = ").push_bind(stream.to_owned());
        }
        if let Some(types) = self.types {
            qb.push(" AND event_type IN ");
            push_in_list(qb, types);
        }
        // Within a stream the sequence follows the stream version; ordering by the
        // version keeps SQLite on the (stream_id, stream_version) index.
        qb.push(match self.stream {
            Some(_) => " ORDER BY stream_version",
            None => " ORDER BY seq",
        });
    }
}

/// Up to `limit` events of `scan`, stopping before the event that would take the
/// page's data and metadata past `max_bytes` (the first is always included). Sizes
/// are read first: `octet_length` reads the record header, not the data, so a page
/// of huge events is cut before any of them is loaded.
pub(super) async fn page_in(
    conn: &mut SqliteConnection,
    scan: Scan<'_>,
    limit: usize,
    max_bytes: usize,
) -> Result<PageIn, StoreError> {
    let limit = limit.max(1);
    // Most pages hold no event bigger than their share of the bytes: one row at
    // most answers that, and then the page is read in one query with no cut.
    let share = (max_bytes / limit) as i64;
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
        "SELECT seq FROM (SELECT seq, octet_length(data) + octet_length(metadata) AS size \
         FROM events",
    );
    scan.push_where(&mut qb);
    qb.push(" LIMIT ").push_bind(to_i64(limit as u64)?);
    qb.push(") WHERE size > ").push_bind(share).push(" LIMIT 1");
    let big: Option<i64> = qb.build_query_scalar().fetch_optional(&mut *conn).await?;
    if big.is_none() {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("SELECT {EVENT_COLUMNS} FROM events"));
        scan.push_where(&mut qb);
        qb.push(" LIMIT ").push_bind(to_i64(limit as u64)?);
        let rows = qb.build().fetch_all(&mut *conn).await?;
        let events = rows
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(PageIn {
            exhausted: events.len() < limit,
            events,
        });
    }
    let mut qb: QueryBuilder<Sqlite> =
        QueryBuilder::new("SELECT seq, octet_length(data) + octet_length(metadata) FROM events");
    scan.push_where(&mut qb);
    qb.push(" LIMIT ").push_bind(to_i64(limit as u64)?);
    let sizes: Vec<(i64, i64)> = qb.build_query_as().fetch_all(&mut *conn).await?;
    let (count, cut) = crate::store::page_cut(&sizes, max_bytes);
    let mut events = Vec::with_capacity(count);
    if let Some(last) = cut {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("SELECT {EVENT_COLUMNS} FROM events"));
        Scan {
            upto: Some(last),
            ..scan
        }
        .push_where(&mut qb);
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
    conn: &mut SqliteConnection,
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

/// A version's position and one of its documents, in the caller's read transaction
/// (so a write-model read sees them at one moment).
pub(super) async fn position_and_doc(
    conn: &mut SqliteConnection,
    key: &ProjectionKey,
    id: &str,
) -> Result<(Position, Option<String>), StoreError> {
    let (position, set): (Position, Option<i64>) =
        sqlx::query_as("SELECT position, doc_set FROM progress WHERE name = ? AND version = ?")
            .bind_key(key)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("progress of {key}")))?;
    let Some(set) = set else {
        return Ok((position, None));
    };
    let doc: Option<String> =
        sqlx::query_scalar("SELECT body FROM documents WHERE set_id = ? AND id = ?")
            .bind(set)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok((position, doc))
}

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
        let version = stream_version(&mut tx, stream.as_str()).await?;
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
        let mut tx = self.reader().begin().await?;
        let (position, doc) = position_and_doc(&mut tx, key, id).await?;
        let head: Position = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events")
            .fetch_one(&mut *tx)
            .await?;
        let stream_version = match stream {
            Some(s) => to_u64(stream_version(&mut tx, s).await?, "stream version")?,
            None => 0,
        };
        let scan = Scan {
            after: position,
            upto: Some(head),
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
