//! PostgreSQL: document sets. Every projection version's documents live in the one
//! `documents` table under the set its progress row names, so deploying, swapping
//! and dropping a version change rows, never the schema. A dropped set's documents
//! are purged in small batches (in rows and bytes) by a background task, so
//! dropping a version with millions of documents holds no lock and writes no
//! huge transaction.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnection, PgPool};
use tokio::sync::{Notify, watch};

use super::convert::BindKey;
use crate::store::{ProjectionKey, StoreError};

/// Documents deleted per purge transaction, at most: short transactions, so the
/// purge never holds back vacuum or replication for long.
pub(super) const PURGE_BATCH: i64 = 2_000;

/// Bytes of documents deleted per purge transaction, at most (one document more
/// than that goes alone).
pub(super) const PURGE_BYTES: i64 = 8 << 20;

/// The wait after a failed purge before the next try.
const PURGE_RETRY: Duration = Duration::from_secs(1);

/// The set of a version: `None` without a progress row, `Some(None)` for a version
/// that keeps no documents (a subscription). With `lock`, the progress row stays
/// locked until the caller's transaction ends, so the set cannot change (a drop, a
/// swap) before it commits.
pub(super) async fn set_of(
    conn: &mut PgConnection,
    key: &ProjectionKey,
    lock: bool,
) -> Result<Option<Option<i64>>, StoreError> {
    let sql = if lock {
        "SELECT doc_set FROM progress WHERE name = $1 AND version = $2 FOR UPDATE"
    } else {
        "SELECT doc_set FROM progress WHERE name = $1 AND version = $2"
    };
    Ok(sqlx::query_scalar(sql)
        .bind_key(key)
        .fetch_optional(conn)
        .await?)
}

/// Gives a version's progress row a new, empty set unless it has one (called after
/// the row is inserted, in the same transaction). The row is locked first: two
/// prepares of one version at once make one set, not two.
pub(super) async fn ensure_set(
    conn: &mut PgConnection,
    key: &ProjectionKey,
) -> Result<(), StoreError> {
    match set_of(&mut *conn, key, true).await? {
        Some(Some(_)) => return Ok(()),
        None => return Err(StoreError::NotFound(format!("progress of {key}"))),
        Some(None) => {}
    }
    let id: i64 = sqlx::query_scalar("INSERT INTO doc_sets DEFAULT VALUES RETURNING id")
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query("UPDATE progress SET doc_set = $1 WHERE name = $2 AND version = $3")
        .bind(id)
        .bind_key(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks a version's set dropped (before its progress row goes, in the same
/// transaction): its documents are invisible at once and purged later.
pub(super) async fn drop_set(
    conn: &mut PgConnection,
    key: &ProjectionKey,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE doc_sets SET dropped = TRUE \
         WHERE id = (SELECT doc_set FROM progress WHERE name = $1 AND version = $2)",
    )
    .bind_key(key)
    .execute(conn)
    .await?;
    Ok(())
}

/// Starts the background purge of dropped sets; `wake` is notified after a drop;
/// the task ends when `closed` turns true or the pool closes.
pub(super) fn spawn_purger(pool: PgPool, wake: Arc<Notify>, mut closed: watch::Receiver<bool>) {
    tokio::spawn(async move {
        loop {
            if *closed.borrow() || pool.is_closed() {
                return;
            }
            let wait = match purge_dropped(&pool).await {
                Ok(()) => None,
                Err(e) => {
                    if *closed.borrow() || pool.is_closed() {
                        return;
                    }
                    tracing::warn!(error = %e, "purging dropped documents failed; retrying");
                    Some(PURGE_RETRY)
                }
            };
            tokio::select! {
                _ = closed.wait_for(|c| *c) => return,
                () = wake.notified(), if wait.is_none() => {}
                () = tokio::time::sleep(wait.unwrap_or_default()), if wait.is_some() => {}
            }
        }
    });
}

/// Deletes the documents of every dropped set, a batch per transaction, then the
/// sets themselves. Several nodes may purge one set at once: they delete the same
/// rows, and the one that waited on the other's finds them gone.
async fn purge_dropped(pool: &PgPool) -> Result<(), StoreError> {
    loop {
        let set: Option<i64> =
            sqlx::query_scalar("SELECT id FROM doc_sets WHERE dropped ORDER BY id LIMIT 1")
                .fetch_optional(pool)
                .await?;
        let Some(set) = set else {
            return Ok(());
        };
        // The first documents left in the set, up to a batch's rows and bytes (at
        // least one), chosen by their sizes alone: the bodies are not read.
        let deleted = sqlx::query(
            "DELETE FROM documents WHERE set_id = $1 AND id <= ( \
                SELECT id FROM ( \
                    SELECT id, SUM(size) OVER (ORDER BY id) AS total, \
                           ROW_NUMBER() OVER (ORDER BY id) AS n \
                    FROM (SELECT id, size FROM documents WHERE set_id = $1 \
                          ORDER BY id LIMIT $2) first \
                ) batch WHERE n = 1 OR total <= $3 ORDER BY id DESC LIMIT 1)",
        )
        .bind(set)
        .bind(PURGE_BATCH)
        .bind(PURGE_BYTES)
        .execute(pool)
        .await?;
        if deleted.rows_affected() == 0 {
            sqlx::query("DELETE FROM doc_sets WHERE id = $1 AND dropped")
                .bind(set)
                .execute(pool)
                .await?;
        }
    }
}
