//! SQLite: swapping a candidate's shadow documents in (see [`crate::store::shadow`]).

use super::SqliteStore;
use super::convert::BindKey;
use crate::store::shadow::ShadowStore;
use crate::store::{ComponentRecord, StoreError};
use async_trait::async_trait;

#[async_trait]
impl ShadowStore for SqliteStore {
    async fn swap_shadow(&self, rec: &ComponentRecord) -> Result<(), StoreError> {
        let (real, shadow) = (&rec.key, rec.key.shadow());
        let types = serde_json::to_string(&rec.event_types)
            .map_err(|e| StoreError::Invalid(format!("event types: {e}")))?;
        let mut tx = self.writer().begin().await?;
        let has_shadow: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM progress WHERE name = ? AND version = ?)",
        )
        .bind_key(&shadow)
        .fetch_one(&mut *tx)
        .await?;
        if !has_shadow {
            return Err(StoreError::NotFound(format!("shadow of {real}")));
        }
        // The real version's set is dropped with its progress; the shadow's progress
        // row, renamed, brings the shadow's set along.
        super::progress::delete_version_rows(&mut tx, real).await?;
        for sql in [
            "UPDATE progress SET name = ? WHERE name = ? AND version = ?",
            "UPDATE dead_letters SET name = ? WHERE name = ? AND version = ?",
        ] {
            sqlx::query(sql)
                .bind(&real.name)
                .bind_key(&shadow)
                .execute(&mut *tx)
                .await?;
        }
        let updated = sqlx::query(
            "UPDATE components SET sha256 = ?, event_types = ?, deployed_at = ?, kind = ? \
             WHERE name = ? AND version = ?",
        )
        .bind(&rec.sha256)
        .bind(types)
        .bind(rec.deployed_at)
        .bind(&rec.kind)
        .bind_key(real)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!("component {real}")));
        }
        tx.commit().await?;
        self.purge_dropped_sets();
        Ok(())
    }
}
