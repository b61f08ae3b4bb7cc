//! PostgreSQL: appends, their checks and their idempotency keys, inside the
//! caller's transaction (an HTTP append or a subscription's emits). An append
//! knows its events' positions when it commits; their sequences come from the
//! sequencer after ([`PgStore::results`]).

use sqlx::Row;
use sqlx::postgres::PgConnection;

use super::PgStore;
use super::convert::{to_i64, to_u64};
use crate::store::{AppendRequest, AppendResult, ExpectedVersion, StoreError, now_micros};

/// An append written in a transaction: its stream version and the positions of its
/// first and last events (one transaction's events are numbered together, in
/// position order, so the sequences between theirs are the append's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Appended {
    /// The stream's version after the append.
    pub stream_version: u64,
    /// Position of the first event.
    pub first_position: i64,
    /// Position of the last event.
    pub last_position: i64,
}

/// The stream and positions of the append that first used `team`'s idempotency key.
pub(super) async fn first_use(
    conn: &mut PgConnection,
    team: &str,
    key: &str,
) -> Result<Option<(String, Appended)>, StoreError> {
    let row = sqlx::query(
        "SELECT stream_id, stream_version, first_position, last_position \
         FROM idempotency_keys WHERE team = $1 AND key = $2",
    )
    .bind(team)
    .bind(key)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok((
            r.try_get(0)?,
            Appended {
                stream_version: to_u64(r.try_get(1)?, "stream version")?,
                first_position: r.try_get(2)?,
                last_position: r.try_get(3)?,
            },
        ))
    })
    .transpose()
}

/// One append inside the caller's transaction: the idempotency key, the expected
/// version, the events. No notification: a notifying commit takes a cluster-wide
/// lock, and the appending process orders its events itself right after commit
/// (the pass notifies every node of the new head). Nothing is written when it fails (the caller
/// rolls back).
pub(super) async fn append_in(
    conn: &mut PgConnection,
    req: &AppendRequest,
) -> Result<Appended, StoreError> {
    let stream = req.stream.as_str();
    if let Some(key) = &req.idempotency_key {
        // Two appends with one new key: the second waits here for the first to
        // commit or roll back, then sees its row (or none).
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 7))")
            .bind(&req.team)
            .bind(key)
            .execute(&mut *conn)
            .await?;
        let first = first_use(&mut *conn, &req.team, key).await?;
        if let Some(done) = crate::store::replay(key, stream, first)? {
            return Ok(done);
        }
    }
    // The stream's row, locked until commit: a concurrent append to the same stream
    // waits, then checks against the version this one leaves.
    let n = to_i64(req.events.len() as u64)?;
    let moved: Option<i64> = match req.expected {
        ExpectedVersion::Any => sqlx::query_scalar(
            "INSERT INTO streams (stream_id, version) VALUES ($1, $2) ON CONFLICT (stream_id) \
             DO UPDATE SET version = streams.version + excluded.version RETURNING version",
        )
        .bind(stream)
        .bind(n),
        ExpectedVersion::NoStream => sqlx::query_scalar(
            "INSERT INTO streams (stream_id, version) VALUES ($1, $2) \
             ON CONFLICT (stream_id) DO NOTHING RETURNING version",
        )
        .bind(stream)
        .bind(n),
        ExpectedVersion::Exact(e) => sqlx::query_scalar(
            "UPDATE streams SET version = version + $1 WHERE stream_id = $2 AND version = $3 \
             RETURNING version",
        )
        .bind(n)
        .bind(stream)
        .bind(to_i64(e)?),
    }
    .fetch_optional(&mut *conn)
    .await?;
    let Some(new_version) = moved else {
        let current: i64 = sqlx::query_scalar("SELECT version FROM streams WHERE stream_id = $1")
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
    let start = new_version - n;
    let now = now_micros();
    // One statement for the whole batch: arrays in, positions out.
    let (mut types, mut data, mut meta) = (Vec::new(), Vec::new(), Vec::new());
    for e in &req.events {
        types.push(e.event_type.as_str());
        data.push(e.data.as_str());
        meta.push(e.metadata.as_str());
    }
    let row = sqlx::query(
        "WITH ins AS (INSERT INTO events \
             (stream_id, stream_version, event_type, data, metadata, tenant, created_at) \
         SELECT $1, $2 + u.n, u.t, u.d, u.m, $3, $4 \
         FROM UNNEST($5::text[], $6::text[], $7::text[]) WITH ORDINALITY AS u(t, d, m, n) \
         ORDER BY u.n RETURNING position) \
         SELECT MIN(position), MAX(position) FROM ins",
    )
    .bind(stream)
    .bind(start)
    .bind(req.tenant.as_deref())
    .bind(now)
    .bind(&types)
    .bind(&data)
    .bind(&meta)
    .fetch_one(&mut *conn)
    .await?;
    let appended = Appended {
        stream_version: to_u64(new_version, "stream version")?,
        first_position: row.try_get(0)?,
        last_position: row.try_get(1)?,
    };
    if let Some(key) = &req.idempotency_key {
        sqlx::query(
            "INSERT INTO idempotency_keys (team, key, stream_id, stream_version, \
             first_position, last_position, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&req.team)
        .bind(key)
        .bind(stream)
        .bind(new_version)
        .bind(appended.first_position)
        .bind(appended.last_position)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(appended)
}

impl PgStore {
    /// The results of committed appends: their sequences, once the sequencer has
    /// numbered them (at once, unless an older transaction is still open: then
    /// when it ends, as for every reader).
    pub(super) async fn results(
        &self,
        appended: &[Appended],
    ) -> Result<Vec<AppendResult>, StoreError> {
        if appended.is_empty() {
            return Ok(Vec::new());
        }
        let ends: Vec<i64> = appended
            .iter()
            .flat_map(|a| [a.first_position, a.last_position])
            .collect();
        let seqs = self.sequences_of(&ends).await?;
        let seq_of = |p: i64| {
            seqs.get(&p).copied().ok_or_else(|| {
                StoreError::Corrupt(format!("the event at position {p} has no sequence"))
            })
        };
        appended
            .iter()
            .map(|a| {
                Ok(AppendResult {
                    stream_version: a.stream_version,
                    first_sequence: seq_of(a.first_position)?,
                    last_sequence: seq_of(a.last_position)?,
                })
            })
            .collect()
    }
}
