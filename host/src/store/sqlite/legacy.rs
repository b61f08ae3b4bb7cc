//! SQLite: adopting a store written before migration 0013, where each projection
//! version kept its documents in a table of its own (`doc_<name>_v<version>`).
//! Their rows move into the version's document set a batch per transaction, so a
//! large table neither holds one huge transaction nor doubles the WAL; a crash
//! between batches loses nothing (each batch moves its rows whole) and the next
//! open goes on where it stopped.

use std::collections::HashSet;

use sqlx::{AssertSqlSafe, Row, SqlitePool};

use super::convert::BindKey;
use super::doc_sets::{SET_OF, ensure_set};
use crate::store::{ProjectionKey, StoreError};

/// Rows moved per transaction.
const BATCH: i64 = 5_000;

/// Moves every old-layout table of a version with progress into its set, then
/// drops the table; answers how many tables it adopted.
pub(super) async fn adopt_legacy_tables(writer: &SqlitePool) -> Result<usize, StoreError> {
    let tables: HashSet<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'doc\\_%' ESCAPE '\\'",
    )
    .fetch_all(writer)
    .await?
    .into_iter()
    .collect();
    if tables.is_empty() {
        return Ok(0);
    }
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
        if tables.contains(&table) {
            let moved = adopt(writer, &key, &table).await?;
            tracing::info!(projection = %key, documents = moved, "moved documents of the old layout into the shared table");
            adopted += 1;
        }
    }
    Ok(adopted)
}

/// Moves one table's rows into `key`'s set, a batch per transaction, and drops it.
async fn adopt(writer: &SqlitePool, key: &ProjectionKey, table: &str) -> Result<u64, StoreError> {
    // Listed by sqlite_master and quoted: an identifier, never SQL.
    let quoted = format!("\"{}\"", table.replace('"', "\"\""));
    let mut moved = 0;
    loop {
        let mut tx = writer.begin().await?;
        ensure_set(&mut tx, key).await?;
        let last: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT MAX(id) FROM (SELECT id FROM {quoted} ORDER BY id LIMIT ?)"
        )))
        .bind(BATCH)
        .fetch_one(&mut *tx)
        .await?;
        let Some(last) = last else {
            sqlx::query(AssertSqlSafe(format!("DROP TABLE {quoted}")))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(moved);
        };
        moved += sqlx::query(AssertSqlSafe(format!(
            "INSERT OR REPLACE INTO documents (set_id, id, size, updated_seq, body) \
             SELECT {SET_OF}, id, length(CAST(body AS BLOB)), updated_seq, body \
             FROM {quoted} WHERE id <= ?"
        )))
        .bind_key(key)
        .bind(&last)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {quoted} WHERE id <= ?")))
            .bind(&last)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
}

/// The table a version's documents had before migration 0013.
fn legacy_table(key: &ProjectionKey) -> String {
    format!("doc_{}_v{}", key.name, key.version)
}
