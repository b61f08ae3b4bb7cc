//! SQLite: document sets. Every projection version's documents live in the one
//! `documents` table under the set its progress row names, so deploying, swapping
//! and dropping a version change rows, never the schema (see migration 0013).
//! A dropped set's documents are purged in small batches by a background task, so
//! dropping a version with millions of documents never holds the writer for long.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{AssertSqlSafe, Row, SqliteConnection, SqlitePool};
use tokio::sync::Notify;

use super::convert::BindKey;
use crate::store::{ProjectionKey, StoreError};

/// The set of a version, as a scalar subquery binding (name, version).
pub(super) const SET_OF: &str = "(SELECT doc_set FROM progress WHERE name = ? AND version = ?)";

/// Documents deleted per purge transaction: small, so appends and commits of every
/// team pass in between.
pub(super) const PURGE_BATCH: i64 = 2_000;

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
pub(super) async fn purge_dropped(writer: &SqlitePool) -> Result<u64, StoreError> {
    let mut purged = 0u64;
    loop {
        let set: Option<i64> =
            sqlx::query_scalar("SELECT id FROM doc_sets WHERE dropped = 1 ORDER BY id LIMIT 1")
                .fetch_optional(writer)
                .await?;
        let Some(set) = set else {
            return Ok(purged);
        };
        let deleted = sqlx::query(
            "DELETE FROM documents WHERE set_id = ?1 AND id IN \
             (SELECT id FROM documents WHERE set_id = ?1 LIMIT ?2)",
        )
        .bind(set)
        .bind(PURGE_BATCH)
        .execute(writer)
        .await?
        .rows_affected();
        purged += deleted;
        if deleted == 0 {
            sqlx::query("DELETE FROM doc_sets WHERE id = ? AND dropped = 1")
                .bind(set)
                .execute(writer)
                .await?;
        } else {
            // Lets whoever waits for the single writer connection go first.
            tokio::task::yield_now().await;
        }
    }
}

/// Moves the documents of the old layout (one table per version) into sets, one
/// version per transaction, so a store written by an older refract opens as it was.
pub(super) async fn adopt_legacy_tables(writer: &SqlitePool) -> Result<usize, StoreError> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'doc\\_%' ESCAPE '\\'",
    )
    .fetch_all(writer)
    .await?;
    if tables.is_empty() {
        return Ok(0);
    }
    let tables: std::collections::HashSet<String> = tables.into_iter().collect();
    let rows = sqlx::query("SELECT name, version FROM progress")
        .fetch_all(writer)
        .await?;
    let mut adopted = 0;
    for row in rows {
        let key = ProjectionKey {
            name: row.try_get(0)?,
            version: row.try_get(1)?,
        };
        let table = legacy_table(&key);
        if !tables.contains(&table) {
            continue;
        }
        // Listed by sqlite_master and quoted: an identifier, never SQL.
        let quoted = format!("\"{}\"", table.replace('"', "\"\""));
        let mut tx = writer.begin().await?;
        ensure_set(&mut tx, &key).await?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT OR REPLACE INTO documents (set_id, id, body, size, updated_seq) \
             SELECT {SET_OF}, id, body, length(CAST(body AS BLOB)), updated_seq FROM {quoted}"
        )))
        .bind_key(&key)
        .execute(&mut *tx)
        .await?;
        sqlx::query(AssertSqlSafe(format!("DROP TABLE {quoted}")))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        adopted += 1;
    }
    Ok(adopted)
}

/// The table a version's documents had before migration 0013.
pub(super) fn legacy_table(key: &ProjectionKey) -> String {
    format!("doc_{}_v{}", key.name, key.version)
}
