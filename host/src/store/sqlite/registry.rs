//! SQLite: the component registry, one indexed query per lookup.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use super::convert::BindKey;
use crate::store::{ComponentRecord, Components, ProjectionKey, Registry, StoreError};

/// The registry's columns, in the order [`record`] reads them.
const COLUMNS: &str = "SELECT name, version, team, sha256, event_types, state, deployed_at, auto_promote, kind \
     FROM components";

#[async_trait]
impl Registry for SqliteStore {
    async fn save_component(&self, rec: &ComponentRecord) -> Result<(), StoreError> {
        let types = serde_json::to_string(&rec.event_types)
            .map_err(|e| StoreError::Invalid(format!("event types: {e}")))?;
        sqlx::query(
            "INSERT INTO components (name, version, team, sha256, event_types, state, \
             deployed_at, auto_promote, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (name, version) DO UPDATE SET team = excluded.team, \
             sha256 = excluded.sha256, event_types = excluded.event_types, \
             state = excluded.state, deployed_at = excluded.deployed_at, \
             auto_promote = excluded.auto_promote, kind = excluded.kind",
        )
        .bind(&rec.key.name)
        .bind(rec.key.version)
        .bind(&rec.team)
        .bind(&rec.sha256)
        .bind(types)
        .bind(&rec.state)
        .bind(rec.deployed_at)
        .bind(rec.auto_promote)
        .bind(&rec.kind)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn set_states(&self, changes: &[(ProjectionKey, &str)]) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        for (key, state) in changes {
            sqlx::query("UPDATE components SET state = ? WHERE name = ? AND version = ?")
                .bind(*state)
                .bind_key(key)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn components_where(
        &self,
        which: Components<'_>,
    ) -> Result<Vec<ComponentRecord>, StoreError> {
        // Each filter is served by an index (the primary key or migration 0012's), so a
        // lookup costs the same with 2 or 20,000 components registered.
        let (filter, text, version) = match which {
            Components::All => ("ORDER BY name, version", None, None),
            Components::Key(key) => (
                "WHERE name = ? AND version = ?",
                Some(key.name.as_str()),
                Some(key.version),
            ),
            Components::Name(name) => ("WHERE name = ? ORDER BY version", Some(name), None),
            Components::Team(team) => ("WHERE team = ? ORDER BY name, version", Some(team), None),
            Components::Code(sha) => ("WHERE sha256 = ? ORDER BY name, version", Some(sha), None),
        };
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!("{COLUMNS} {filter}")));
        if let Some(text) = text {
            query = query.bind(text);
        }
        if let Some(version) = version {
            query = query.bind(version);
        }
        let rows = query.fetch_all(self.reader()).await?;
        rows.iter().map(record).collect()
    }
}

/// One registry row as a record.
fn record(row: &SqliteRow) -> Result<ComponentRecord, StoreError> {
    let types: String = row.try_get(4)?;
    let version: i64 = row.try_get(1)?;
    Ok(ComponentRecord {
        key: ProjectionKey {
            name: row.try_get(0)?,
            version: u32::try_from(version)
                .map_err(|_| StoreError::Corrupt(format!("version {version}")))?,
        },
        team: row.try_get(2)?,
        sha256: row.try_get(3)?,
        event_types: serde_json::from_str(&types)
            .map_err(|e| StoreError::Corrupt(format!("event types: {e}")))?,
        state: row.try_get(5)?,
        deployed_at: row.try_get(6)?,
        auto_promote: row.try_get(7)?,
        kind: row.try_get(8)?,
    })
}
