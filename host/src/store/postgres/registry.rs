//! PostgreSQL: the registry of deployed components, one indexed query per lookup.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PgStore;
use super::convert::{BindKey, to_version};
use crate::store::{ComponentRecord, Components, ProjectionKey, Registry, StoreError};

/// The registry's columns, in the order [`record`] reads them.
const COLUMNS: &str = "SELECT name, version, team, sha256, event_types, state, deployed_at, \
     auto_promote, kind FROM components";

/// Key order as SQLite sorts it (bytes), whatever the database's collation.
const KEY_ORDER: &str = "ORDER BY name COLLATE \"C\", version";

#[async_trait]
impl Registry for PgStore {
    async fn save_component(&self, rec: &ComponentRecord) -> Result<(), StoreError> {
        let types = serde_json::to_string(&rec.event_types)
            .map_err(|e| StoreError::Invalid(format!("event types: {e}")))?;
        sqlx::query(
            "INSERT INTO components (name, version, team, sha256, event_types, state, \
             deployed_at, auto_promote, kind) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (name, version) DO UPDATE SET team = excluded.team, \
             sha256 = excluded.sha256, event_types = excluded.event_types, \
             state = excluded.state, deployed_at = excluded.deployed_at, \
             auto_promote = excluded.auto_promote, kind = excluded.kind",
        )
        .bind_key(&rec.key)
        .bind(&rec.team)
        .bind(&rec.sha256)
        .bind(types)
        .bind(&rec.state)
        .bind(rec.deployed_at)
        .bind(rec.auto_promote)
        .bind(&rec.kind)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_states(&self, changes: &[(ProjectionKey, &str)]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (key, state) in changes {
            sqlx::query("UPDATE components SET state = $1 WHERE name = $2 AND version = $3")
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
        // Each filter is served by an index (the primary key, components_by_team or
        // components_by_code), so a lookup costs the same with 2 or 20,000
        // components registered.
        let (filter, text, version) = match which {
            Components::All => ("", None, None),
            Components::Key(key) => (
                "WHERE name = $1 AND version = $2",
                Some(key.name.as_str()),
                Some(i64::from(key.version)),
            ),
            Components::Name(name) => ("WHERE name = $1", Some(name), None),
            Components::Team(team) => ("WHERE team = $1", Some(team), None),
            Components::Code(sha) => ("WHERE sha256 = $1", Some(sha), None),
        };
        let sql = format!("{COLUMNS} {filter} {KEY_ORDER}");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(text) = text {
            query = query.bind(text);
        }
        if let Some(version) = version {
            query = query.bind(version);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(record).collect()
    }
}

/// One registry row as a record.
fn record(row: &PgRow) -> Result<ComponentRecord, StoreError> {
    let types: String = row.try_get(4)?;
    Ok(ComponentRecord {
        key: ProjectionKey {
            name: row.try_get(0)?,
            version: to_version(row.try_get(1)?)?,
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
