//! This node's part among several daemon nodes on one store (PostgreSQL; see
//! [`crate::store::cluster`] for the leases and why a node that lost one cannot
//! commit).
//!
//! Every node loads every deployed version (its code comes from the store when
//! another node took the deploy) but runs the agents of the versions it holds the
//! lease of. Once a tick (a third of a lease's life) each node: says it is alive;
//! renews its leases and stops the agents of the ones it lost; follows the
//! registry (code and states changed through other nodes); and balances: it holds
//! at most ⌈versions / live nodes⌉, gives back its surplus after stopping those
//! agents (their commit in flight settles first), and claims free or expired
//! leases up to its share. Which versions a node prefers is a rendezvous hash of
//! (node, version), so nodes seldom race for one lease and a version tends to land
//! on the same node again.
//!
//! A lifecycle change through any node (deploy, promote, pause, rebuild, rewind,
//! reload) takes the version's lease to that node as it stops and restarts the
//! agent ([`crate::daemon::Daemon::stop`] revokes it): the previous holder's
//! commits fail from that moment, and the balancer moves the version on later if
//! the node holds more than its share. A claimed version starts as after a
//! restart: its code, its stored status (an operator's pause is kept, a guest's
//! failure is tried again) and its progress are read from the store.
//!
//! A candidate build (rebuild beside the live version) runs on the node that
//! started it and holds its own lease outside the balance; if that node dies, the
//! candidate stops with it (start it again).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod balance;
mod view;

pub use view::{ClusterNode, ClusterView};

use super::{Refract, ServiceError};
use crate::config::Config;
use crate::deploy::VersionState;
use crate::runtime::Loaded;
use crate::store::{ComponentRecord, ProjectionKey};

/// This node's membership: its lease life and what it last saw of the registry.
#[derive(Default)]
pub(super) struct Membership {
    ttl: Duration,
    /// Each version's code and state as last seen in the registry.
    seen: Mutex<HashMap<ProjectionKey, (String, String)>>,
    /// Stops the balancer and the keep-alive task, and the tasks (in that order:
    /// a shutdown stops claiming first and renewing last).
    tasks: Mutex<
        Vec<(
            tokio::sync::watch::Sender<bool>,
            tokio::task::JoinHandle<()>,
        )>,
    >,
    /// When each held version found not running was last looked at.
    idle: Mutex<HashMap<ProjectionKey, std::time::Instant>>,
}

/// How often a held version that is not running (paused) is looked at again.
const IDLE_RECHECK: Duration = Duration::from_secs(10);

/// The default node id: the host's name and a hash of the data directory (a
/// restart on it is the same node; two daemons on one host have two directories).
fn default_node_id(data_dir: &std::path::Path) -> String {
    use sha2::Digest;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into());
    let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_owned());
    let digest = sha2::Sha256::digest(dir.to_string_lossy().as_bytes());
    let short: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("{host}-{short}")
}

/// A rendezvous rank: lower ranks are claimed first and given back last.
fn rank(node: &str, key: &ProjectionKey) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (node, &key.name, key.version).hash(&mut h);
    h.finish()
}

fn to_run(rec: &ComponentRecord) -> bool {
    VersionState::parse(&rec.state) != VersionState::Retired
}

impl Refract {
    /// Joins the cluster when the store is one several nodes share; answers whether
    /// it did (agents then start as leases are claimed, not all at once). A node id
    /// in use by a live process is waited for one lease's life (a restart after a
    /// crash), then refused.
    pub(super) async fn join_cluster(&mut self, config: &Config) -> Result<bool, ServiceError> {
        let Some(cluster) = self.store.cluster() else {
            return Ok(false);
        };
        let ttl = Duration::from_millis(config.cluster.lease_ttl_ms);
        // The default id is the data directory's on this host: a daemon restarted
        // on it (after a crash) is the same node, and takes its leases back at
        // once, since the directory's lock says no other process runs on it.
        let sole = config.cluster.node_id.is_none() && config.data_dir_locked;
        let node = config
            .cluster
            .node_id
            .clone()
            .unwrap_or_else(|| default_node_id(&config.data_dir));
        let addr = config.listen.to_string();
        let deadline = tokio::time::Instant::now() + ttl + Duration::from_secs(1);
        loop {
            match cluster
                .join(&node, Some(&addr), ttl, config.cluster.audit_commits, sole)
                .await
            {
                Ok(()) => break,
                Err(crate::store::StoreError::Invalid(m)) if m.contains("in use") => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(ServiceError::Startup(m));
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.membership.ttl = ttl;
        tracing::info!(node, ttl_ms = ttl.as_millis() as u64, "joined the cluster");
        Ok(true)
    }

    /// Starts this node's keep-alive and balancer tasks (by [`Refract::open`], on a
    /// shared store). They are apart so that renewals never wait: the balancer
    /// takes teams' deploy locks, loads code and stops agents, any of which may
    /// take longer than a lease lives.
    pub(super) fn start_cluster(self: &Arc<Self>) {
        if self.store.cluster().and_then(|c| c.node()).is_none() {
            return;
        }
        let tick = self.membership.ttl / 3;
        let (stop_balancer, stopped) = tokio::sync::watch::channel(false);
        let balancing = tokio::spawn(balancer(Arc::downgrade(self), tick, stopped));
        let (stop_alive, stopped) = tokio::sync::watch::channel(false);
        let alive = tokio::spawn(keep_alive(Arc::downgrade(self), tick, stopped));
        let mut tasks = self
            .membership
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *tasks = vec![(stop_balancer, balancing), (stop_alive, alive)];
    }

    /// Stops the balancer (first in a shutdown: nothing is claimed after) or, with
    /// `renewals`, the heartbeats and renewals too (after the agents stopped: their
    /// last commits still hold their leases).
    pub(super) async fn stop_cluster(&self, renewals: bool) {
        let stopping: Vec<_> = {
            let mut tasks = self
                .membership
                .tasks
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let n = if renewals {
                tasks.len()
            } else {
                tasks.len().min(1)
            };
            tasks.drain(..n).collect()
        };
        for (stop, task) in stopping {
            stop.send_replace(true);
            let _ = task.await;
        }
    }

    /// Gives this node's leases back and leaves (last in a shutdown, after the
    /// agents stopped): the other nodes take its versions over at once.
    pub(super) async fn leave_cluster(&self) {
        if let Some(c) = self.store.cluster()
            && c.node().is_some()
            && let Err(e) = c.leave().await
        {
            tracing::warn!("leaving the cluster: {e} (its leases expire instead)");
        }
    }

    /// Runs `rec`'s agent on this node, for a request its agent answers (a
    /// dead-letter replay, a stream's rebuild): taken over from wherever it runs,
    /// even from this node's own agent (this node's map of its leases may be a
    /// round behind: the agent here may have lost its lease a moment ago). A
    /// version not running anywhere (paused) stays as it is.
    pub(super) async fn bring_here(&self, rec: &ComponentRecord, loaded: &Loaded) {
        if self.store.cluster().and_then(|c| c.node()).is_none() {
            return;
        }
        let _one_at_a_time = self.locks.of_name(&rec.key.name).await;
        let running = self.store.progress(&rec.key).await;
        if !running.is_ok_and(|p| p.status == crate::store::RunStatus::Running) {
            return;
        }
        self.daemon.stop(&rec.key).await;
        self.run(rec.key.clone(), &rec.team, loaded.clone()).await;
    }

    /// Takes `key`'s lease for this node, from wherever it is (true without a
    /// cluster); false if the store could not be reached.
    pub(super) async fn take_lease(&self, key: &ProjectionKey) -> bool {
        let Some(c) = self.store.cluster() else {
            return true;
        };
        if c.node().is_none() {
            return true;
        }
        match c.claim(key, true).await {
            Ok(held) => held,
            Err(e) => {
                tracing::error!(projection = %key, "cannot take the lease: {e}");
                false
            }
        }
    }

    /// Says this node is alive and renews its leases; the agents of leases it lost
    /// stop (apart, so the next renewal does not wait for them).
    async fn renew(self: &Arc<Self>) -> Result<(), ServiceError> {
        let Some(c) = self.store.cluster() else {
            return Ok(());
        };
        c.heartbeat().await?;
        let lost = c.renew().await?;
        if lost.is_empty() {
            return Ok(());
        }
        let svc = self.clone();
        tokio::spawn(async move {
            for key in lost {
                // Taken again since (a lifecycle call here): that agent stays.
                if svc.store.cluster().is_some_and(|c| c.holds(&key)) {
                    continue;
                }
                tracing::warn!(projection = %key, "lease lost: its agent stops here");
                svc.daemon.stop_local(&key).await;
            }
        });
        Ok(())
    }
}

/// Heartbeats and lease renewals, every `tick`, until `stopped`.
async fn keep_alive(
    svc: std::sync::Weak<Refract>,
    tick: Duration,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(tick);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stopped.changed() => return,
        }
        let Some(svc) = svc.upgrade() else { return };
        if let Err(e) = svc.renew().await {
            tracing::warn!("cluster heartbeat: {e}");
        }
    }
}

/// Balancing rounds, every `tick` (sooner when a dead node's leases expire),
/// until `stopped`.
async fn balancer(
    svc: std::sync::Weak<Refract>,
    tick: Duration,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let Some(this) = svc.upgrade() else { return };
        let next = match this.balance().await {
            Ok(sooner) => sooner.map_or(tick, |s| s.min(tick)),
            Err(e) => {
                tracing::warn!("cluster balance: {e}");
                tick
            }
        };
        drop(this);
        tokio::select! {
            _ = tokio::time::sleep(next) => {}
            _ = stopped.changed() => return,
        }
    }
}
