//! Several daemon nodes on one database: who is alive, which node runs each agent,
//! and the code every node can load.
//!
//! Ownership is a **leases table with fencing tokens**, not session advisory locks.
//! An advisory lock belongs to one connection, but an agent commits through any
//! connection of its node's pool, so a node whose lock connection died could still
//! commit through another one. A lease row is checked where it matters: every
//! commit of an agent (`commit_page`, `commit_handled`, the status it writes)
//! first reads its lease row `FOR SHARE` in the commit's own transaction and goes
//! on only if the row still names this node, the token this node was given when it
//! claimed, and an expiry later than the database's `clock_timestamp()`.
//!
//! Why a node that lost its lease can never commit: a lease changes hands only by
//! an `UPDATE` or `DELETE` of its row that gives a new token (tokens come from one
//! sequence). That statement waits for any commit holding the row's share lock, and
//! a commit that starts after it sees the new token and fails. Expiry is judged by
//! the database's clock alone, so a paused or partitioned node, whose own clock and
//! heartbeats mean nothing, fails its check as soon as its lease is past its
//! expiry, whether or not another node took it yet. The new owner reads the
//! version's progress only after its claim committed, so it starts exactly where
//! the last commit of the old owner left it: no page is lost or applied twice.
//!
//! Nodes renew their leases and heartbeats every second; a lease lives
//! [`DEFAULT_LEASE_TTL`] past its last renewal, so a dead node's agents are taken
//! over within that plus one tick.

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::{ProjectionKey, StoreError};

/// How long a lease lives past its last renewal unless configured otherwise.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(3);

/// A node as the database knows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node's id (`--node-id`).
    pub node_id: String,
    /// Where its API listens, as it said.
    pub addr: Option<String>,
    /// When it started, in microseconds since the Unix epoch.
    pub started_at: i64,
    /// Milliseconds since its last heartbeat, by the database's clock.
    pub heartbeat_age_ms: u64,
    /// Whether its heartbeat is recent enough (within a lease's life).
    pub alive: bool,
}

/// A lease as the database holds it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LeaseInfo {
    /// The agent's version.
    pub key: ProjectionKey,
    /// The node holding it.
    pub node_id: String,
    /// Its fencing token.
    pub token: i64,
    /// Milliseconds until it expires (negative: expired, free to take).
    pub expires_in_ms: i64,
}

/// A team's lock across nodes, held until dropped.
pub struct TeamLock(pub Box<dyn std::any::Any + Send>);

impl std::fmt::Debug for TeamLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TeamLock")
    }
}

/// Nodes, leases and shared code: what several daemon nodes on one database share.
#[async_trait]
pub trait ClusterStore: Send + Sync {
    /// Registers this process as `node` (listening at `addr`), with leases living
    /// `ttl` past each renewal; `audit` records every fenced commit in
    /// `lease_commits`. Refused while another process holds that id alive, unless
    /// `sole` (the caller knows no other process can be that node: the one before
    /// it died; its leases go at once).
    async fn join(
        &self,
        node: &str,
        addr: Option<&str>,
        ttl: Duration,
        audit: bool,
        sole: bool,
    ) -> Result<(), StoreError>;

    /// This process's node id, once joined.
    fn node(&self) -> Option<String>;

    /// Says this node is alive; answers every node the database knows.
    async fn heartbeat(&self) -> Result<Vec<NodeInfo>, StoreError>;

    /// Every node the database knows (nothing written).
    async fn nodes(&self) -> Result<Vec<NodeInfo>, StoreError>;

    /// The unexpired leases of `keys` (a team's listing reads only its own).
    async fn holders(&self, keys: &[ProjectionKey]) -> Result<Vec<LeaseInfo>, StoreError>;

    /// Waits until `team` may change its versions on every node (held until the
    /// guard is dropped): lifecycle changes through two nodes go one at a time.
    async fn lock_team(&self, team: &str) -> Result<TeamLock, StoreError>;

    /// Releases this node's leases and removes it (a graceful stop).
    async fn leave(&self) -> Result<(), StoreError>;

    /// Every lease, held or expired.
    async fn leases(&self) -> Result<Vec<LeaseInfo>, StoreError>;

    /// Claims `key` for this node if no other node holds it (or, with `take_over`,
    /// whoever holds it: the holder's commits fail from then on). Answers whether
    /// this node holds it now.
    async fn claim(&self, key: &ProjectionKey, take_over: bool) -> Result<bool, StoreError>;

    /// Renews this node's leases; answers the ones it lost (taken over, revoked,
    /// or gone), which it no longer holds.
    async fn renew(&self) -> Result<Vec<ProjectionKey>, StoreError>;

    /// Gives up this node's lease of `key` (its agent has stopped).
    async fn release(&self, key: &ProjectionKey) -> Result<(), StoreError>;

    /// Takes `key`'s lease from whichever node holds it, so that node's agent can
    /// commit nothing more (before a lifecycle change of the version's stored
    /// state); waits for a commit of it in flight.
    async fn revoke(&self, key: &ProjectionKey) -> Result<(), StoreError>;

    /// The leases this process holds, as it last knew them.
    fn held(&self) -> Vec<ProjectionKey>;

    /// Whether this process holds `key`'s lease, as it last knew.
    fn holds(&self, key: &ProjectionKey) -> bool;

    /// Stores a component's wasm under its hash (once).
    async fn put_code(&self, sha256: &str, wasm: &[u8]) -> Result<(), StoreError>;

    /// A component's wasm by hash, if stored.
    async fn code(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError>;
}
