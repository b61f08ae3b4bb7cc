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

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use super::{Refract, ServiceError};
use crate::config::Config;
use crate::deploy::VersionState;
use crate::identity::SHADOW_SUFFIX;
use crate::runtime::Loaded;
use crate::store::cluster::NodeInfo;
use crate::store::{ComponentRecord, ProjectionKey};

/// This node's membership: its lease life and what it last saw of the registry.
#[derive(Default)]
pub(super) struct Membership {
    ttl: Duration,
    /// Each version's code and state as last seen in the registry.
    seen: Mutex<HashMap<ProjectionKey, (String, String)>>,
    stop: Mutex<Option<tokio::sync::watch::Sender<bool>>>,
    /// The keep-alive task (heartbeats, renewals) and the balancer.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// One node in `GET /cluster`.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterNode {
    /// The node as the store knows it.
    #[serde(flatten)]
    pub info: NodeInfo,
    /// The versions whose leases it holds (the caller's team's only, for a team).
    pub agents: Vec<String>,
}

/// What `GET /cluster` shows.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterView {
    /// The node that answered.
    pub node: String,
    /// Versions to run (not retired): the caller's team's, for a team.
    pub versions: usize,
    /// ⌈versions / live nodes⌉, the most one node runs (for the admin only: it
    /// counts every team's versions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_node_max: Option<usize>,
    /// Every node the store knows (dead ones for an hour).
    pub nodes: Vec<ClusterNode>,
}

/// The default node id: the host's name and this process's id (and a count, for
/// a second service in one process).
fn default_node_id() -> String {
    static OPENED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into());
    match OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) {
        0 => format!("{host}-{}", std::process::id()),
        n => format!("{host}-{}-{}", std::process::id(), n + 1),
    }
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
        let node = config
            .cluster
            .node_id
            .clone()
            .unwrap_or_else(default_node_id);
        let addr = config.listen.to_string();
        let deadline = tokio::time::Instant::now() + ttl + Duration::from_secs(1);
        loop {
            match cluster
                .join(&node, Some(&addr), ttl, config.cluster.audit_commits)
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
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let tick = self.membership.ttl / 3;
        let alive = tokio::spawn(keep_alive(Arc::downgrade(self), tick, stopped.clone()));
        let balancer = tokio::spawn(balancer(Arc::downgrade(self), tick, stopped));
        *self
            .membership
            .stop
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(stop);
        *self
            .membership
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = vec![alive, balancer];
    }

    /// Stops the cluster's tasks (first in a shutdown: nothing is claimed after).
    pub(super) async fn stop_cluster(&self) {
        let stop = self
            .membership
            .stop
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(stop) = stop {
            stop.send_replace(true);
        }
        let tasks = std::mem::take(
            &mut *self
                .membership
                .tasks
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for task in tasks {
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

    /// Runs `rec`'s agent on this node if it runs on another one (a request its
    /// agent answers: a dead-letter replay, a stream's rebuild). A version not
    /// running anywhere (paused) stays as it is.
    pub(super) async fn bring_here(&self, rec: &ComponentRecord, loaded: &Loaded) {
        let joined = self.store.cluster().and_then(|c| c.node()).is_some();
        if !joined || self.daemon.is_running(&rec.key) {
            return;
        }
        let _one_at_a_time = self.locks.of_name(&rec.key.name).await;
        if self.daemon.is_running(&rec.key) {
            return;
        }
        let running = self.store.progress(&rec.key).await;
        if !running.is_ok_and(|p| p.status == crate::store::RunStatus::Running) {
            return;
        }
        tracing::info!(projection = %rec.key, "taken over to answer a request here");
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

    /// One balancing round of this node (see the module doc). Answers when to
    /// run again if sooner than usual: a node that missed a beat holds leases that
    /// expire before the next round (a takeover then waits for the lease, not for
    /// the round too).
    async fn balance(&self) -> Result<Option<Duration>, ServiceError> {
        let Some(c) = self.store.cluster() else {
            return Ok(None);
        };
        let node = c.node().unwrap_or_default();
        let nodes = c.nodes().await?;
        let recs = self.store.components().await?;
        self.follow_registry(&recs).await;
        let wanted: HashMap<&ProjectionKey, &ComponentRecord> = recs
            .iter()
            .filter(|r| to_run(r))
            .map(|r| (&r.key, r))
            .collect();
        let alive = nodes.iter().filter(|n| n.alive).count().max(1);
        let share = wanted.len().div_ceil(alive);
        let mut mine = Vec::new();
        for key in c.held() {
            if wanted.contains_key(&key) {
                mine.push(key);
            } else if !key.name.ends_with(SHADOW_SUFFIX) {
                // Retired or gone: nothing runs it any more.
                self.give_back(&key).await;
            }
        }
        for key in &mine {
            self.restart_if_idle(key, wanted[key]).await;
        }
        if mine.len() > share {
            mine.sort_by_key(|k| rank(&node, k));
            for key in mine.split_off(share) {
                tracing::info!(projection = %key, share, "handing over to another node");
                self.give_back(&key).await;
            }
            return Ok(None);
        }
        // A node that missed a beat is probably dead: tick again when its leases
        // expire (takeover waits for the lease, not for the next tick too).
        let beat_ms = (self.membership.ttl / 2).as_millis() as u64;
        let suspects: HashSet<&str> = nodes
            .iter()
            .filter(|n| n.heartbeat_age_ms > beat_ms)
            .map(|n| n.node_id.as_str())
            .collect();
        if mine.len() == share && suspects.is_empty() {
            return Ok(None);
        }
        let leases = c.leases().await?;
        let soonest = leases
            .iter()
            .filter(|l| l.expires_in_ms > 0 && suspects.contains(l.node_id.as_str()))
            .map(|l| Duration::from_millis(l.expires_in_ms.unsigned_abs() + 20))
            .min();
        if mine.len() == share {
            return Ok(soonest);
        }
        let taken: HashSet<&ProjectionKey> = leases
            .iter()
            .filter(|l| l.expires_in_ms > 0)
            .map(|l| &l.key)
            .collect();
        let mut free: Vec<&ComponentRecord> = wanted
            .values()
            .filter(|r| !taken.contains(&r.key) && !c.holds(&r.key))
            .copied()
            .collect();
        free.sort_by_key(|r| rank(&node, &r.key));
        let mut claimed = 0;
        for rec in free.into_iter().take(share - mine.len()) {
            // Under the team's lock (on every node): no lifecycle call is halfway
            // through this version while it is claimed and started.
            let _one_at_a_time = self.locks.of_name(&rec.key.name).await;
            let Some(rec) = self.store.component(&rec.key).await?.filter(to_run) else {
                continue;
            };
            let rec = &rec;
            if c.claim(&rec.key, false).await? {
                tracing::info!(projection = %rec.key, "lease claimed");
                self.start_claimed(rec).await;
                claimed += 1;
            }
        }
        tracing::debug!(claimed, "claimed below the share");
        Ok(soonest)
    }

    /// Starts the agent of a version this node holds but does not run (a start
    /// that failed, a lifecycle call that ended early), unless it is meant to be
    /// stopped: paused, or live (folded on read).
    async fn restart_if_idle(&self, key: &ProjectionKey, rec: &ComponentRecord) {
        if self.daemon.is_running(key) || self.is_live(key) {
            return;
        }
        let _one_at_a_time = self.locks.of_name(&key.name).await;
        let held = self.store.cluster().is_some_and(|c| c.holds(key));
        if !held || self.daemon.is_running(key) {
            return;
        }
        match self.store.progress(key).await {
            Ok(p) if p.status == crate::store::RunStatus::Running => {
                tracing::info!(projection = %key, "held but not running here: starting it");
                self.start_claimed(rec).await;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(projection = %key, "reading its progress: {e}"),
        }
    }

    /// Stops this node's agent of `key` (its commit in flight settles) and gives
    /// its lease back.
    async fn give_back(&self, key: &ProjectionKey) {
        let _one_at_a_time = self.locks.of_name(&key.name).await;
        self.daemon.stop_local(key).await;
        if let Some(c) = self.store.cluster()
            && let Err(e) = c.release(key).await
        {
            tracing::warn!(projection = %key, "giving the lease back: {e} (it expires instead)");
        }
    }

    /// Drops the candidates no live node builds (their node died): what a single
    /// daemon does at every start for its own.
    pub(super) async fn drop_orphan_shadows(&self) -> Result<(), ServiceError> {
        let recs = self.store.components().await?;
        let shadows: Vec<ProjectionKey> = recs.iter().map(|r| r.key.shadow()).collect();
        let held = self.lease_holders(&shadows).await;
        for rec in recs {
            let shadow = rec.key.shadow();
            if held.contains_key(&shadow) || self.store.progress(&shadow).await.is_err() {
                continue;
            }
            self.store.drop_projection(&shadow).await?;
            tracing::info!(projection = %rec.key, "dropped a candidate no node builds");
        }
        Ok(())
    }

    /// Starts a version this node just claimed, as a restart would: its code as
    /// registered, its stored pause read again. Code that cannot be loaded here
    /// pauses the version (as at a restart; the next node to claim it tries again).
    async fn start_claimed(&self, rec: &ComponentRecord) {
        let loaded = match self.loaded_for(rec).await {
            Ok(loaded) => loaded,
            Err(e) => {
                tracing::error!(projection = %rec.key, "cannot load the claimed version: {e}");
                let node = self
                    .store
                    .cluster()
                    .and_then(|c| c.node())
                    .unwrap_or_default();
                let msg = format!("cannot be loaded on node {node}: {e}");
                let paused =
                    self.store
                        .set_status(&rec.key, crate::store::RunStatus::Paused, Some(&msg));
                if let Err(e) = paused.await {
                    tracing::warn!(projection = %rec.key, "recording the pause: {e}");
                }
                return;
            }
        };
        if let Err(e) = self.read_pause(&rec.key).await {
            tracing::warn!(projection = %rec.key, "reading its pause: {e}");
        }
        self.run(rec.key.clone(), &rec.team, loaded).await;
    }

    /// `rec`'s code, compiled: the one loaded here if it is the registered one,
    /// else loaded from the data directory or the store.
    async fn loaded_for(&self, rec: &ComponentRecord) -> Result<Loaded, ServiceError> {
        if let Some(l) = self.loaded_components().get(&rec.key)
            && l.sha256() == rec.sha256
        {
            return Ok(l.clone());
        }
        let limits = self.teams.team(&rec.team).limits;
        let restored = self
            .lifecycle
            .restore_one(&self.runtime, &self.components_dir, rec, limits);
        Ok(restored.await?)
    }

    /// Follows changes other nodes made to the registry: new versions and new code
    /// are loaded here (for reads, and restarted if this node runs them), state
    /// changes reach this node's agents, retired versions are forgotten.
    async fn follow_registry(&self, recs: &[ComponentRecord]) {
        let mut states = Vec::new();
        let mut fresh = Vec::new();
        {
            let mut seen = self
                .membership
                .seen
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let keys: HashSet<&ProjectionKey> = recs.iter().map(|r| &r.key).collect();
            // After the first round, a version seen for the first time was deployed
            // through another node: waiting to be auto-promoted, it is watched here
            // too (the deploying node may die; a second promote finds it done).
            let watching = !seen.is_empty();
            seen.retain(|k, _| keys.contains(k));
            for rec in recs {
                let now = (rec.sha256.clone(), rec.state.clone());
                match seen.insert(rec.key.clone(), now) {
                    Some((_, state)) if state != rec.state => {
                        states.push((rec.key.clone(), VersionState::parse(&rec.state)));
                    }
                    None if watching
                        && rec.auto_promote
                        && VersionState::parse(&rec.state) == VersionState::CatchingUp =>
                    {
                        self.lifecycle.auto_promote(rec.key.clone());
                    }
                    _ => {}
                }
                let stale = self
                    .loaded_components()
                    .get(&rec.key)
                    .is_none_or(|l| l.sha256() != rec.sha256);
                if to_run(rec) && stale {
                    fresh.push(rec);
                }
            }
        }
        self.lifecycle.note_states(&states);
        let running: HashSet<&ProjectionKey> =
            recs.iter().filter(|r| to_run(r)).map(|r| &r.key).collect();
        self.loaded_components().retain(|k, _| running.contains(k));
        for rec in fresh {
            let _one_at_a_time = self.locks.of_name(&rec.key.name).await;
            let held = self.store.cluster().is_some_and(|c| c.holds(&rec.key));
            if held {
                tracing::info!(projection = %rec.key, "new code from another node: restarting");
                self.start_claimed(rec).await;
            } else {
                match self.loaded_for(rec).await {
                    Ok(l) => {
                        self.loaded_components().insert(rec.key.clone(), l);
                    }
                    Err(e) => tracing::warn!(projection = %rec.key, "loading new code: {e}"),
                }
            }
        }
    }

    /// The cluster as the store knows it, with the agents each node holds (only
    /// `team`'s, unless `None`: the admin); `None` without a cluster.
    pub async fn cluster_view(
        &self,
        team: Option<&str>,
    ) -> Result<Option<ClusterView>, ServiceError> {
        let Some(c) = self.store.cluster() else {
            return Ok(None);
        };
        let Some(node) = c.node() else {
            return Ok(None);
        };
        let nodes = c.nodes().await?;
        let leases = c.leases().await?;
        let which = team.map_or(
            crate::store::Components::All,
            crate::store::Components::Team,
        );
        let versions = self
            .store
            .components_where(which)
            .await?
            .iter()
            .filter(|r| to_run(r))
            .count();
        let alive = nodes.iter().filter(|n| n.alive).count().max(1);
        let nodes = nodes
            .into_iter()
            .map(|mut info| {
                if team.is_some() {
                    // Where nodes listen is the operator's business.
                    info.addr = None;
                }
                let agents = leases
                    .iter()
                    .filter(|l| l.node_id == info.node_id && l.expires_in_ms > 0)
                    .filter(|l| team.is_none_or(|t| crate::teams::team_of(&l.key.name) == t))
                    .map(|l| l.key.to_string())
                    .collect();
                ClusterNode { info, agents }
            })
            .collect();
        Ok(Some(ClusterView {
            node,
            versions,
            per_node_max: team.is_none().then(|| versions.div_ceil(alive)),
            nodes,
        }))
    }

    /// The node holding each of `keys`' leases (unexpired), on a shared store.
    pub(super) async fn lease_holders(
        &self,
        keys: &[ProjectionKey],
    ) -> HashMap<ProjectionKey, String> {
        let Some(c) = self.store.cluster() else {
            return HashMap::new();
        };
        match c.holders(keys).await {
            Ok(leases) => leases
                .into_iter()
                .filter(|l| l.expires_in_ms > 0)
                .map(|l| (l.key, l.node_id))
                .collect(),
            Err(e) => {
                tracing::warn!("reading leases: {e}");
                HashMap::new()
            }
        }
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
