//! The embedded SQLite backend: one file in WAL mode, one writer connection (so
//! commits land in sequence order) and a pool of readers.

mod docs;
mod reads;
#[cfg(test)]
mod reads_tests;
mod registry;
#[cfg(test)]
mod registry_tests;
mod shadow;
mod subscription;
#[cfg(test)]
mod subscription_tests;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};
use tokio::sync::watch;

use super::{
    AppendRequest, AppendResult, EventStore, ExpectedVersion, MAX_IDEMPOTENCY_KEY_LEN, Page,
    Position, RecordedEvent, StoreError, StreamId, check_name, now_micros,
};

/// Rows per multi-row INSERT: 8 parameters a row stays under SQLite's 32,766 limit.
const INSERT_CHUNK: usize = 1000;

/// Largest number of events accepted in one append.
pub const MAX_EVENTS_PER_APPEND: usize = 100_000;

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    head: watch::Sender<Position>,
    /// The last sequence committed of each event type by this process.
    type_heads: std::sync::Arc<std::sync::RwLock<TypeHeads>>,
    /// Largest event (data and metadata, in bytes) an append or an emit may carry.
    max_event_bytes: usize,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and runs the migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode survives a killed process; only power loss can drop
            // the last commits.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("../migrations/sqlite").run(&writer).await?;
        // A whole page crosses from sqlx's worker thread in one go instead of 50 rows
        // at a time (each hand-off is a thread wake-up).
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true).row_buffer_size(16 * 1024))
            .await?;
        let store = Self {
            writer,
            reader,
            head: watch::channel(0).0,
            type_heads: Default::default(),
            max_event_bytes: super::DEFAULT_MAX_EVENT_BYTES,
        };
        let head = store.head().await?;
        store.write_type_heads().since = head;
        store.head.send_replace(head);
        Ok(store)
    }

    /// The same store with another maximum event size (bytes of data and metadata).
    pub fn with_max_event_bytes(mut self, max: usize) -> Self {
        self.max_event_bytes = max.max(1);
        self
    }

    /// The largest event an append or an emit may carry, in bytes.
    pub fn max_event_bytes(&self) -> usize {
        self.max_event_bytes
    }

    /// Writes a checkpoint of the WAL and closes the pools.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    pub(crate) fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    fn write_type_heads(&self) -> std::sync::RwLockWriteGuard<'_, TypeHeads> {
        self.type_heads.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes that events of `types` up to `last` are committed (before the head
    /// moves, so a woken watcher sees them).
    pub(super) fn appended_types<'a>(&self, types: impl Iterator<Item = &'a str>, last: Position) {
        let mut heads = self.write_type_heads();
        for t in types {
            match heads.last.get_mut(t) {
                Some(at) => *at = (*at).max(last),
                None => {
                    heads.last.insert(t.to_owned(), last);
                }
            }
        }
    }

    /// Tells the watchers of the head that events up to `last` are committed.
    pub(super) fn moved_head(&self, last: Position) {
        self.head.send_if_modified(|h| {
            let moved = *h < last;
            *h = (*h).max(last);
            moved
        });
    }
}

/// The last sequence of each event type this process committed; anything at or
/// below `since` (the head when the store was opened) is not known by type.
#[derive(Debug, Default)]
struct TypeHeads {
    since: Position,
    last: std::collections::HashMap<String, Position>,
}

/// Appends `(?, ?, ...)` binding `items`; `(NULL)` when there are none, which
/// matches nothing.
pub(super) fn push_in_list<'a, T>(qb: &mut QueryBuilder<Sqlite>, items: &'a [T])
where
    &'a T: sqlx::Encode<'a, Sqlite> + sqlx::Type<Sqlite>,
{
    qb.push("(");
    let mut sep = qb.separated(", ");
    for item in items {
        sep.push_bind(item);
    }
    if items.is_empty() {
        sep.push("NULL");
    }
    qb.push(")");
}

/// Converts a stored integer that must not be negative.
fn to_u64(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what}: {v}")))
}

/// Converts a version into the stored integer.
fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Invalid(format!("{v} is too large")))
}

pub(super) fn event_from_row(row: &SqliteRow) -> Result<RecordedEvent, StoreError> {
    Ok(RecordedEvent {
        sequence: row.try_get(0)?,
        stream_id: row.try_get(1)?,
        stream_version: to_u64(row.try_get(2)?, "stream version")?,
        event_type: row.try_get(3)?,
        data: row.try_get(4)?,
        metadata: row.try_get(5)?,
        tenant: row.try_get(6)?,
        timestamp: row.try_get(7)?,
    })
}

pub(super) const EVENT_COLUMNS: &str =
    "seq, stream_id, stream_version, event_type, data, metadata, tenant, created_at";

/// Sequences per `IN (...)` list.
const ID_LIST_CHUNK: usize = 1000;

pub(super) fn validate(req: &AppendRequest, max_event_bytes: usize) -> Result<(), StoreError> {
    if req.events.is_empty() {
        return Err(StoreError::Invalid("no events to append".into()));
    }
    if req.events.len() > MAX_EVENTS_PER_APPEND {
        return Err(StoreError::Invalid(format!(
            "{} events in one append; the limit is {MAX_EVENTS_PER_APPEND}",
            req.events.len()
        )));
    }
    if let Some(key) = &req.idempotency_key {
        check_name("idempotency key", key, MAX_IDEMPOTENCY_KEY_LEN)?;
    }
    for (i, e) in req.events.iter().enumerate() {
        let size = e.data.len() + e.metadata.len();
        if size > max_event_bytes {
            return Err(StoreError::TooLarge {
                index: i,
                size,
                max: max_event_bytes,
            });
        }
        check_name(
            &format!("events[{i}].type"),
            &e.event_type,
            super::MAX_EVENT_TYPE_LEN,
        )?;
    }
    Ok(())
}

/// One append inside the caller's write transaction: the idempotency key, the
/// expected version, the events. Nothing is written when it fails (the caller rolls
/// back).
pub(super) async fn append_in(
    conn: &mut SqliteConnection,
    req: &AppendRequest,
) -> Result<AppendResult, StoreError> {
    let stream = req.stream.as_str();
    if let Some(key) = &req.idempotency_key {
        let row = sqlx::query(
            "SELECT stream_id, stream_version, first_sequence, last_sequence \
                 FROM idempotency_keys WHERE team = ? AND key = ?",
        )
        .bind(&req.team)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(row) = row {
            let first_stream: String = row.try_get(0)?;
            if first_stream != stream {
                return Err(StoreError::KeyReused {
                    key: key.clone(),
                    stream: first_stream,
                });
            }
            return Ok(AppendResult {
                stream_version: to_u64(row.try_get(1)?, "stream version")?,
                first_sequence: row.try_get(2)?,
                last_sequence: row.try_get(3)?,
            });
        }
    }
    // One statement checks the expected version and moves the stream on; no row
    // back means the check failed (each statement is a round trip to the worker).
    let n = to_i64(req.events.len() as u64)?;
    let moved: Option<i64> = match req.expected {
        ExpectedVersion::Any => sqlx::query_scalar(
            "INSERT INTO streams (stream_id, version) VALUES (?, ?) ON CONFLICT (stream_id) \
                 DO UPDATE SET version = version + excluded.version RETURNING version",
        )
        .bind(stream)
        .bind(n),
        ExpectedVersion::NoStream => sqlx::query_scalar(
            "INSERT INTO streams (stream_id, version) VALUES (?, ?) \
                 ON CONFLICT (stream_id) DO NOTHING RETURNING version",
        )
        .bind(stream)
        .bind(n),
        ExpectedVersion::Exact(e) => sqlx::query_scalar(
            "UPDATE streams SET version = version + ? WHERE stream_id = ? AND version = ? \
                 RETURNING version",
        )
        .bind(n)
        .bind(stream)
        .bind(to_i64(e)?),
    }
    .fetch_optional(&mut *conn)
    .await?;
    let Some(new_version) = moved else {
        let current: i64 = sqlx::query_scalar("SELECT version FROM streams WHERE stream_id = ?")
            .bind(stream)
            .fetch_optional(&mut *conn)
            .await?
            .unwrap_or(0);
        return Err(StoreError::Conflict {
            stream: stream.to_owned(),
            current: to_u64(current, "stream version")?,
            expected: match req.expected {
                ExpectedVersion::Any => "any".into(),
                ExpectedVersion::NoStream => "no stream (0)".into(),
                ExpectedVersion::Exact(n) => n.to_string(),
            },
        });
    };
    let current = to_u64(new_version - n, "stream version")?;
    let now = now_micros();
    let mut version = current;
    let mut last_seq = 0;
    for chunk in req.events.chunks(INSERT_CHUNK) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO events (stream_id, stream_version, event_type, data, metadata, \
                 tenant, created_at) ",
        );
        let start = version;
        qb.push_values(chunk.iter().enumerate(), |mut row, (i, e)| {
            row.push_bind(stream)
                .push_bind((start + 1 + i as u64) as i64)
                .push_bind(&e.event_type)
                .push_bind(&e.data)
                .push_bind(&e.metadata)
                .push_bind(req.tenant.as_deref())
                .push_bind(now);
        });
        let done = qb.build().execute(&mut *conn).await?;
        last_seq = done.last_insert_rowid();
        version += chunk.len() as u64;
    }
    let count = req.events.len() as i64;
    let result = AppendResult {
        stream_version: version,
        first_sequence: last_seq - count + 1,
        last_sequence: last_seq,
    };
    if let Some(key) = &req.idempotency_key {
        sqlx::query(
            "INSERT INTO idempotency_keys (team, key, stream_id, stream_version, \
                 first_sequence, last_sequence, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&req.team)
        .bind(key)
        .bind(stream)
        .bind(to_i64(version)?)
        .bind(result.first_sequence)
        .bind(result.last_sequence)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(result)
}

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
        self.appended_types(types, result.last_sequence);
        self.moved_head(result.last_sequence);
        Ok(result)
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
    ) -> Result<(u64, Vec<RecordedEvent>), StoreError> {
        let mut tx = self.reader.begin().await?;
        let version: i64 = sqlx::query_scalar("SELECT version FROM streams WHERE stream_id = ?")
            .bind(stream.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .unwrap_or(0);
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

    async fn read_page_within(
        &self,
        after: Position,
        types: Option<&[String]>,
        limit: usize,
        max_bytes: usize,
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
        let page = reads::page_in(&mut tx, scan, limit, max_bytes).await?;
        tx.commit().await?;
        let events = page.events;
        // A short page means every event up to the head was examined.
        let scanned_to = match events.last() {
            Some(last) if !page.exhausted => last.sequence,
            _ => head.max(after),
        };
        Ok(Page { events, scanned_to })
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
        let (count, _) = reads::page_cut(&sizes, max_bytes);
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
        let row = sqlx::query(
            "SELECT stream_id, stream_version, first_sequence, last_sequence \
             FROM idempotency_keys WHERE team = ? AND key = ?",
        )
        .bind(team)
        .bind(key)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| {
            Ok((
                r.try_get(0)?,
                AppendResult {
                    stream_version: to_u64(r.try_get(1)?, "stream version")?,
                    first_sequence: r.try_get(2)?,
                    last_sequence: r.try_get(3)?,
                },
            ))
        })
        .transpose()
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
        self.head.subscribe()
    }

    fn last_of_types(&self, types: &[String]) -> Option<Position> {
        let heads = self.type_heads.read().unwrap_or_else(|p| p.into_inner());
        let last = types
            .iter()
            .filter_map(|t| heads.last.get(t))
            .max()
            .copied();
        Some(last.unwrap_or(0).max(heads.since))
    }
}
