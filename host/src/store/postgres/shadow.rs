//! PostgreSQL: swapping a candidate's shadow documents in (see
//! [`crate::store::shadow`]).

use async_trait::async_trait;

use super::PgStore;
use super::convert::BindKey;
use crate::store::shadow::ShadowStore;
use crate::store::{ComponentRecord, StoreError};

#[async_trait]
impl ShadowStore for PgStore {
    async fn swap_shadow(&self, rec: &ComponentRecord) -> Result<(), StoreError> {
        let (real, shadow) = (&rec.key, rec.key.shadow());
        let types = serde_json::to_string(&rec.event_types)
            .map_err(|e| StoreError::Invalid(format!("event types: {e}")))?;
        let mut tx = self.pool.begin().await?;
        // Locked until commit: a commit of the shadow waits, then finds it renamed
        // away (and lands nothing).
        let has_shadow = super::doc_sets::set_of(&mut tx, &shadow, true)
            .await?
            .is_some();
        if !has_shadow {
            return Err(StoreError::NotFound(format!("shadow of {real}")));
        }
        // The real version's set is dropped with its progress; the shadow's progress
        // row, renamed, brings the shadow's set along.
        super::progress::delete_version_rows(&mut tx, real).await?;
        for sql in [
            "UPDATE progress SET name = $1 WHERE name = $2 AND version = $3",
            "UPDATE dead_letters SET name = $1 WHERE name = $2 AND version = $3",
        ] {
            sqlx::query(sql)
                .bind(&real.name)
                .bind_key(&shadow)
                .execute(&mut *tx)
                .await?;
        }
        let updated = sqlx::query(
            "UPDATE components SET sha256 = $1, event_types = $2, deployed_at = $3, kind = $4 \
             WHERE name = $5 AND version = $6",
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
