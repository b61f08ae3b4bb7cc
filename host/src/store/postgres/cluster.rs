//! PostgreSQL: nodes, leases with fencing tokens and shared code (see
//! [`crate::store::cluster`] for why a node that lost a lease cannot commit).

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgConnection;

use super::PgStore;
use super::convert::BindKey;
use crate::store::cluster::{ClusterStore, LeaseInfo, NodeInfo, TeamLock};
use crate::store::{Position, ProjectionKey, StoreError, now_micros};

/// Dead nodes stay listed this long, then their rows are removed.
const FORGET_DEAD_AFTER_S: f64 = 3600.0;

/// This process as a node, once joined, and the leases it holds (key → token).
#[derive(Debug, Default)]
pub(super) struct Fences {
    me: OnceLock<Member>,
    held: Mutex<HashMap<ProjectionKey, i64>>,
    /// Leases this process lost (and holds not again): a status its stale agent
    /// writes is refused.
    lost: Mutex<HashSet<ProjectionKey>>,
}

#[derive(Debug)]
struct Member {
    node: String,
    instance: String,
    ttl_s: f64,
    audit: bool,
}

impl Fences {
    fn held(&self) -> MutexGuard<'_, HashMap<ProjectionKey, i64>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A lease's life in seconds (the default before joining).
    pub(super) fn ttl_s(&self) -> f64 {
        self.me.get().map_or(
            crate::store::cluster::DEFAULT_LEASE_TTL.as_secs_f64(),
            |m| m.ttl_s,
        )
    }

    /// Whether a status written for `key` must pass the lease check (this node
    /// holds it); refused at once if this node lost it.
    pub(super) fn fences_status(&self, key: &ProjectionKey) -> Result<bool, StoreError> {
        let Some(me) = self.me.get() else {
            return Ok(false);
        };
        if self.held().contains_key(key) {
            return Ok(true);
        }
        if self
            .lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(key)
        {
            return Err(StoreError::LeaseLost(format!(
                "node {} no longer holds {key}",
                me.node
            )));
        }
        Ok(false)
    }

    fn holding(&self, key: &ProjectionKey, token: i64) {
        self.held().insert(key.clone(), token);
        self.lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    fn losing(&self, key: &ProjectionKey) {
        self.lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone());
    }

    /// This process's instance id, once joined (outbox claims name it: a second
    /// process under a reused node id claims nothing of the first's).
    pub(super) fn instance(&self) -> Option<String> {
        self.me.get().map(|m| m.instance.clone())
    }

    fn me(&self) -> Result<&Member, StoreError> {
        self.me
            .get()
            .ok_or_else(|| StoreError::Invalid("this process has not joined the cluster".into()))
    }
}

impl PgStore {
    /// Inside an agent's commit transaction: fails unless this node still holds
    /// `key`'s lease (same token, not expired by the database's clock), and keeps
    /// the lease row share-locked until the commit ends, so no take-over can come
    /// between the check and the commit; a commit of progress (`position`) is
    /// audited if asked. Nothing is checked before the process joins a cluster
    /// (the store used alone, as in its own tests).
    pub(super) async fn fenced(
        &self,
        conn: &mut PgConnection,
        key: &ProjectionKey,
        position: Option<Position>,
    ) -> Result<(), StoreError> {
        let Some(me) = self.fences.me.get() else {
            return Ok(());
        };
        let lost = || StoreError::LeaseLost(format!("node {} no longer holds {key}", me.node));
        let token = self.fences.held().get(key).copied().ok_or_else(lost)?;
        let held: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM leases WHERE name = $1 AND version = $2 AND node_id = $3 \
             AND token = $4 AND expires_at > clock_timestamp() FOR SHARE",
        )
        .bind_key(key)
        .bind(&me.node)
        .bind(token)
        .fetch_optional(&mut *conn)
        .await?;
        held.ok_or_else(lost)?;
        if let Some(position) = position
            && me.audit
        {
            sqlx::query(
                "INSERT INTO lease_commits (name, version, node_id, token, position) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind_key(key)
            .bind(&me.node)
            .bind(token)
            .bind(position)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

fn key_of(row: &sqlx::postgres::PgRow) -> Result<ProjectionKey, StoreError> {
    let version: i64 = row.try_get(1)?;
    Ok(ProjectionKey {
        name: row.try_get(0)?,
        version: u32::try_from(version)
            .map_err(|_| StoreError::Corrupt(format!("lease version {version}")))?,
    })
}

/// A lease from a row of (name, version, node_id, token, milliseconds left).
fn lease_of(row: &sqlx::postgres::PgRow) -> Result<LeaseInfo, StoreError> {
    Ok(LeaseInfo {
        key: key_of(row)?,
        node_id: row.try_get(2)?,
        token: row.try_get(3)?,
        expires_in_ms: row.try_get(4)?,
    })
}

/// A random id for this process (tells two processes under one node id apart).
fn instance_id() -> String {
    format!("{:016x}-{}", super::rand_token(), std::process::id())
}

#[async_trait]
impl ClusterStore for PgStore {
    async fn join(
        &self,
        node: &str,
        addr: Option<&str>,
        ttl: Duration,
        audit: bool,
        sole: bool,
    ) -> Result<(), StoreError> {
        let ttl_s = ttl.as_secs_f64().max(0.1);
        let instance = instance_id();
        let joined: Option<i32> = sqlx::query_scalar(
            "INSERT INTO nodes (node_id, instance, addr) VALUES ($1, $2, $3) \
             ON CONFLICT (node_id) DO UPDATE SET instance = excluded.instance, \
             addr = excluded.addr, started_at = clock_timestamp(), \
             heartbeat_at = clock_timestamp() \
             WHERE $5 OR nodes.heartbeat_at < clock_timestamp() - make_interval(secs => $4) \
             RETURNING 1",
        )
        .bind(node)
        .bind(&instance)
        .bind(addr)
        .bind(ttl_s)
        .bind(sole)
        .fetch_optional(&self.pool)
        .await?;
        if joined.is_none() {
            return Err(StoreError::Invalid(format!(
                "node id {node:?} is in use by a live node (it sent a heartbeat within the \
                 last {ttl_s} s); give this process another --node-id"
            )));
        }
        // Leases left by an earlier process under this id (it is dead: its
        // heartbeat expired) go at once instead of after their expiry.
        sqlx::query("DELETE FROM leases WHERE node_id = $1")
            .bind(node)
            .execute(&self.pool)
            .await?;
        let member = Member {
            node: node.to_owned(),
            instance,
            ttl_s,
            audit,
        };
        self.fences
            .me
            .set(member)
            .map_err(|_| StoreError::Invalid("this process has joined already".into()))
    }

    fn node(&self) -> Option<String> {
        self.fences.me.get().map(|m| m.node.clone())
    }

    async fn heartbeat(&self) -> Result<Vec<NodeInfo>, StoreError> {
        let me = self.fences.me()?;
        let beat = sqlx::query(
            "UPDATE nodes SET heartbeat_at = clock_timestamp() WHERE node_id = $1 AND instance = $2",
        )
        .bind(&me.node)
        .bind(&me.instance)
        .execute(&self.pool)
        .await?;
        if beat.rows_affected() == 0 {
            tracing::error!(
                node = me.node,
                "another process joined under this node id (this one was taken for dead)"
            );
        }
        sqlx::query(
            "DELETE FROM nodes WHERE heartbeat_at < clock_timestamp() - make_interval(secs => $1)",
        )
        .bind(FORGET_DEAD_AFTER_S)
        .execute(&self.pool)
        .await?;
        self.nodes().await
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>, StoreError> {
        let ttl_s = self.fences.ttl_s();
        let rows = sqlx::query(
            "SELECT node_id, addr, (extract(epoch FROM started_at) * 1000000)::bigint, \
             GREATEST((extract(epoch FROM clock_timestamp() - heartbeat_at) * 1000)::bigint, 0) \
             FROM nodes ORDER BY node_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let alive_ms = (ttl_s * 1000.0) as u64;
        rows.iter()
            .map(|r| {
                let age: i64 = r.try_get(3)?;
                let age = u64::try_from(age).unwrap_or(0);
                Ok(NodeInfo {
                    node_id: r.try_get(0)?,
                    addr: r.try_get(1)?,
                    started_at: r.try_get(2)?,
                    heartbeat_age_ms: age,
                    alive: age < alive_ms,
                })
            })
            .collect()
    }

    async fn leave(&self) -> Result<(), StoreError> {
        let me = self.fences.me()?;
        let tokens: Vec<i64> = self.fences.held().drain().map(|(_, t)| t).collect();
        sqlx::query("DELETE FROM leases WHERE node_id = $1 AND token = ANY($2::bigint[])")
            .bind(&me.node)
            .bind(&tokens)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM nodes WHERE node_id = $1 AND instance = $2")
            .bind(&me.node)
            .bind(&me.instance)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn leases(&self) -> Result<Vec<LeaseInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, version, node_id, token, \
             (extract(epoch FROM expires_at - clock_timestamp()) * 1000)::bigint \
             FROM leases ORDER BY name, version",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(lease_of).collect()
    }

    async fn claim(&self, key: &ProjectionKey, take_over: bool) -> Result<bool, StoreError> {
        let me = self.fences.me()?;
        // A take-over always asks the database: this process's map may be a round
        // behind (another node took the lease since), and a lifecycle call relying
        // on it would change a version another node still commits for. Its new
        // token replaces the old one here, so an agent of this node goes on.
        if !take_over && self.fences.held().contains_key(key) {
            return Ok(true);
        }
        let token: Option<i64> = sqlx::query_scalar(
            "INSERT INTO leases (name, version, node_id, token, expires_at) \
             VALUES ($1, $2, $3, nextval('lease_tokens'), \
                     clock_timestamp() + make_interval(secs => $4)) \
             ON CONFLICT (name, version) DO UPDATE SET node_id = excluded.node_id, \
             token = excluded.token, acquired_at = clock_timestamp(), \
             expires_at = excluded.expires_at \
             WHERE $5 OR leases.expires_at < clock_timestamp() \
             RETURNING token",
        )
        .bind_key(key)
        .bind(&me.node)
        .bind(me.ttl_s)
        .bind(take_over)
        .fetch_optional(&self.pool)
        .await?;
        match token {
            Some(t) => {
                self.fences.holding(key, t);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn renew(&self) -> Result<Vec<ProjectionKey>, StoreError> {
        let me = self.fences.me()?;
        let held: Vec<(ProjectionKey, i64)> = self
            .fences
            .held()
            .iter()
            .map(|(k, t)| (k.clone(), *t))
            .collect();
        let tokens: Vec<i64> = held.iter().map(|(_, t)| *t).collect();
        let kept: Vec<i64> = sqlx::query_scalar(
            "UPDATE leases SET expires_at = clock_timestamp() + make_interval(secs => $1) \
             WHERE node_id = $2 AND token = ANY($3::bigint[]) RETURNING token",
        )
        .bind(me.ttl_s)
        .bind(&me.node)
        .bind(&tokens)
        .fetch_all(&self.pool)
        .await?;
        let kept: std::collections::HashSet<i64> = kept.into_iter().collect();
        let mut map = self.fences.held();
        let mut lost = Vec::new();
        for (key, token) in held.into_iter().filter(|(_, t)| !kept.contains(t)) {
            // A claim since the snapshot holds a newer token: that one stays.
            if map.get(&key) == Some(&token) {
                map.remove(&key);
                lost.push(key);
            }
        }
        drop(map);
        for key in &lost {
            self.fences.losing(key);
        }
        Ok(lost)
    }

    async fn release(&self, key: &ProjectionKey) -> Result<(), StoreError> {
        let Some(token) = self.fences.held().remove(key) else {
            return Ok(());
        };
        sqlx::query("DELETE FROM leases WHERE name = $1 AND version = $2 AND token = $3")
            .bind_key(key)
            .bind(token)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn revoke(&self, key: &ProjectionKey) -> Result<(), StoreError> {
        self.fences.held().remove(key);
        sqlx::query("DELETE FROM leases WHERE name = $1 AND version = $2")
            .bind_key(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    fn held(&self) -> Vec<ProjectionKey> {
        self.fences.held().keys().cloned().collect()
    }

    fn holds(&self, key: &ProjectionKey) -> bool {
        self.fences.held().contains_key(key)
    }

    async fn holders(&self, keys: &[ProjectionKey]) -> Result<Vec<LeaseInfo>, StoreError> {
        let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
        let versions: Vec<i64> = keys.iter().map(|k| i64::from(k.version)).collect();
        let rows = sqlx::query(
            "SELECT l.name, l.version, l.node_id, l.token, \
             (extract(epoch FROM l.expires_at - clock_timestamp()) * 1000)::bigint \
             FROM leases l JOIN UNNEST($1::text[], $2::bigint[]) AS k (name, version) \
             ON l.name = k.name AND l.version = k.version \
             WHERE l.expires_at > clock_timestamp()",
        )
        .bind(&names)
        .bind(&versions)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(lease_of).collect()
    }

    async fn lock_team(&self, team: &str) -> Result<TeamLock, StoreError> {
        // A transaction-scoped lock: it goes with the transaction, which goes
        // (rolled back) with the guard, so no code path can leave it held.
        let mut tx = self.locks.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('refract-team:' || $1))")
            .bind(team)
            .execute(&mut *tx)
            .await?;
        Ok(TeamLock(Box::new(tx)))
    }

    async fn put_code(&self, sha256: &str, wasm: &[u8]) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO component_code (sha256, wasm, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(sha256)
        .bind(wasm)
        .bind(now_micros())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn code(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT wasm FROM component_code WHERE sha256 = $1")
                .bind(sha256)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}
