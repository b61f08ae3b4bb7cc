//! SQLite: appends, their checks and their idempotency keys, inside the caller's
//! write transaction (an HTTP append or a subscription's emits).

use sqlx::sqlite::SqliteConnection;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::{to_i64, to_u64};
use crate::store::{AppendRequest, AppendResult, ExpectedVersion, StoreError, now_micros};

/// Rows per multi-row INSERT: 8 parameters a row stays under SQLite's 32,766 limit.
const INSERT_CHUNK: usize = 1000;

/// The stream and result of the append that first used `team`'s idempotency key.
pub(super) async fn first_use<'c>(
    conn: impl sqlx::SqliteExecutor<'c>,
    team: &str,
    key: &str,
) -> Result<Option<(String, AppendResult)>, StoreError> {
    let row = sqlx::query(
        "SELECT stream_id, stream_version, first_sequence, last_sequence \
         FROM idempotency_keys WHERE team = ? AND key = ?",
    )
    .bind(team)
    .bind(key)
    .fetch_optional(conn)
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

/// One append inside the caller's write transaction: the idempotency key, the
/// expected version, the events. Nothing is written when it fails (the caller rolls
/// back).
pub(super) async fn append_in(
    conn: &mut SqliteConnection,
    req: &AppendRequest,
) -> Result<AppendResult, StoreError> {
    let stream = req.stream.as_str();
    if let Some(key) = &req.idempotency_key {
        let first = first_use(&mut *conn, &req.team, key).await?;
        if let Some(result) = crate::store::replay(key, stream, first)? {
            return Ok(result);
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
            expected: req.expected.describe(),
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
