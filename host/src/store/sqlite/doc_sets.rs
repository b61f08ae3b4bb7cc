//! SQLite: document sets. Every projection version's documents live in the one
//! `documents` table under the set its progress row names, so deploying, swapping
//! and dropping a version change rows, never the schema (see migration 0013).
//! A dropped set's documents are purged in small batches (in rows and bytes) by a
//! background task, so dropping a version with millions of documents never holds
//! the writer for long.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{AssertSqlSafe, SqliteConnection, SqlitePool};
use tokio::sync::Notify;

use super::convert::BindKey;
use crate::store::{ProjectionKey, StoreError};

/// The set of a version, as a scalar subquery binding (name, version).
pub(super) const SET_OF: &str = "(SELECT doc_set FROM progress WHERE name = ? AND version = ?)";

/// Documents deleted per purge transaction, at most: small, so appends and commits
/// of every team pass in between.
pub(super) const PURGE_BATCH: i64 = 2_000;

/// Bytes of documents deleted per purge transaction, at most (one document more
/// than that goes alone): freeing a large body means reading its overflow pages.
pub(super) const PURGE_BYTES: i64 = 8 << 20;

/// The writer's rest between two purge transactions.
const PURGE_PAUSE: Duration = Duration::from_millis(2);

/// The set of a version: `None` without a progress row, `Some(None)` for a version
/// that keeps no documents (a subscription).
pub(super) async fn set_of(
    conn: &mut SqliteConnection,
    key: &ProjectionKey,
) -> Result<Option<Option<i64>>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT doc_set FROM progress WHERE name = ? AND version = ?")
            .bind_key(key)
            .fetch_optional(conn)
            .await?,
    )
}

/// Gives a version's progress row a new, empty set unless it has one (called after
/// the row is inserted, in the same transaction).
pub(super) async fn ensure_set(
    conn: &mut SqliteConnection,
    key: &ProjectionKey,
) -> Result<(), StoreError> {
    if let Some(Some(_)) = set_of(conn, key).await? {
        return Ok(());
    }
    let id: i64 = sqlx::query_scalar("INSERT INTO doc_sets DEFAULT VALUES RETURNING id")
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query("UPDATE progress SET doc_set = ? WHERE name = ? AND version = ?")
        .bind(id)
        .bind_key(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks a version's set dropped (before its progress row goes, in the same
/// transaction): its documents are invisible at once and purged later.
pub(super) async fn drop_set(
    conn: &mut SqliteConnection,
    key: &ProjectionKey,
) -> Result<(), StoreError> {
    sqlx::query(AssertSqlSafe(format!(
        "UPDATE doc_sets SET dropped = 1 WHERE id = {SET_OF}"
    )))
    .bind_key(key)
    .execute(conn)
    .await?;
    Ok(())
}

/// Starts the background purge of dropped sets; `wake` is notified after a drop
/// and when the store closes (the task ends once the writer pool is closed).
pub(super) fn spawn_purger(writer: SqlitePool, wake: Arc<Notify>) {
    tokio::spawn(async move {
        loop {
            if writer.is_closed() {
                return;
            }
            if let Err(e) = purge_dropped(&writer).await {
                if writer.is_closed() {
                    return;
                }
                tracing::warn!(error = %e, "purging dropped documents failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            wake.notified().await;
        }
    });
}

/// Deletes the documents of every dropped set, a batch per transaction, then the
/// sets themselves.
async fn purge_dropped(writer: &SqlitePool) -> Result<(), StoreError> {
    loop {
        let set: Option<i64> =
            sqlx::query_scalar("SELECT id FROM doc_sets WHERE dropped = 1 ORDER BY id LIMIT 1")
                .fetch_optional(writer)
                .await?;
        let Some(set) = set else {
            return Ok(());
        };
        // The first documents left in the set, up to a batch's rows and bytes (the
        // sizes are read without the bodies: they come last in each row).
        let sizes: Vec<(String, i64)> =
            sqlx::query_as("SELECT id, size FROM documents WHERE set_id = ? ORDER BY id LIMIT ?")
                .bind(set)
                .bind(PURGE_BATCH)
                .fetch_all(writer)
                .await?;
        let Some(last) = batch_end(&sizes, PURGE_BYTES) else {
            sqlx::query("DELETE FROM doc_sets WHERE id = ? AND dropped = 1")
                .bind(set)
                .execute(writer)
                .await?;
            continue;
        };
        sqlx::query("DELETE FROM documents WHERE set_id = ? AND id <= ?")
            .bind(set)
            .bind(last)
            .execute(writer)
            .await?;
        // Every team's appends and commits wait for the one writer meanwhile: let
        // them in between batches.
        tokio::time::sleep(PURGE_PAUSE).await;
    }
}

/// The id of the last document of a batch: the longest prefix of `sizes` within
/// `max_bytes`, at least one document.
pub(super) fn batch_end(sizes: &[(String, i64)], max_bytes: i64) -> Option<&str> {
    let mut total = 0i64;
    let mut end = None;
    for (id, size) in sizes {
        total = total.saturating_add(*size);
        if end.is_some() && total > max_bytes {
            break;
        }
        end = Some(id.as_str());
    }
    end
}
