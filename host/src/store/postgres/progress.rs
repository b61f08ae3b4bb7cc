//! PostgreSQL: the progress row every version (projection or subscription) keeps,
//! moved on inside the transaction that commits what it reflects. An UPDATE locks
//! the row until commit, and a concurrent one re-checks its guard after the wait:
//! two writers of one version cannot both move it from the same place.

use sqlx::postgres::PgConnection;

use super::convert::{BindKey, to_i64};
use crate::store::subscription::DeadLetter;
use crate::store::{Position, ProjectionKey, StoreError, now_micros};

/// Creates a version's progress row (at the start) inside the caller's transaction,
/// keeping one that exists.
pub(super) async fn insert_progress(
    conn: &mut PgConnection,
    key: &ProjectionKey,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO progress (name, version, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name, version) DO NOTHING",
    )
    .bind_key(key)
    .bind(now_micros())
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes a version's progress and dead letters inside the caller's transaction,
/// dropping its document set (purged later: call `purge_dropped_sets` after commit).
pub(super) async fn delete_version_rows(
    conn: &mut PgConnection,
    key: &ProjectionKey,
) -> Result<(), StoreError> {
    super::doc_sets::drop_set(&mut *conn, key).await?;
    for sql in [
        "DELETE FROM progress WHERE name = $1 AND version = $2",
        "DELETE FROM dead_letters WHERE name = $1 AND version = $2",
    ] {
        sqlx::query(sql).bind_key(key).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Moves a version's progress on inside the caller's transaction, counting what the
/// page applied, skipped and held back. The guard `position <= $n` refuses to move
/// it back: someone else (a replaced or retired agent) moved it on, so the caller's
/// transaction must write nothing.
pub(super) async fn advance_progress(
    conn: &mut PgConnection,
    key: &ProjectionKey,
    position: Position,
    applied: u64,
    skipped: u64,
    held: u64,
) -> Result<(), StoreError> {
    let updated = sqlx::query(
        "UPDATE progress SET position = $1, events_applied = events_applied + $2, \
         events_skipped = events_skipped + $3, effects_held = effects_held + $4, \
         updated_at = $5 WHERE name = $6 AND version = $7 AND position <= $1",
    )
    .bind(position)
    .bind(to_i64(applied)?)
    .bind(to_i64(skipped)?)
    .bind(to_i64(held)?)
    .bind(now_micros())
    .bind_key(key)
    .execute(conn)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(moved_on(key, position));
    }
    Ok(())
}

/// A commit's error when the version's progress is past `position` or gone
/// (someone else moved it on, or it was dropped under the caller).
pub(super) fn moved_on(key: &ProjectionKey, position: Position) -> StoreError {
    StoreError::Conflict {
        stream: format!("progress of {key}"),
        current: 0,
        expected: format!("position <= {position}"),
    }
}

/// Records (or updates the error of) a version's dead letter inside the caller's
/// transaction.
pub(super) async fn record_dead_letter(
    conn: &mut PgConnection,
    key: &ProjectionKey,
    dl: &DeadLetter,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO dead_letters (name, version, sequence, error, created_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (name, version, sequence) DO UPDATE SET error = excluded.error",
    )
    .bind_key(key)
    .bind(dl.sequence)
    .bind(without_nul(&dl.error))
    .bind(now_micros())
    .execute(conn)
    .await?;
    Ok(())
}

/// `s` without the NUL characters PostgreSQL's text cannot hold (an error message
/// quoting a guest's text may carry them; SQLite keeps them).
pub(super) fn without_nul(s: &str) -> String {
    s.replace('\0', "")
}
