//! This node's balancing round: the registry followed, surplus given back, free
//! leases claimed up to the share, held versions that do not run started again.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::{IDLE_RECHECK, rank, to_run};
use crate::deploy::VersionState;
use crate::identity::SHADOW_SUFFIX;
use crate::runtime::Loaded;
use crate::service::{Refract, ServiceError};
use crate::store::{ComponentRecord, ProjectionKey};

impl Refract {
    /// One balancing round of this node (see the module doc). Answers when to
    /// run again if sooner than usual: a node that missed a beat holds leases that
    /// expire before the next round (a takeover then waits for the lease, not for
    /// the round too).
    pub(in crate::service) async fn balance(&self) -> Result<Option<Duration>, ServiceError> {
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
        let held: HashSet<&ProjectionKey> = mine.iter().collect();
        self.membership
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| held.contains(k));
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
        // A paused version is looked at again only now and then: a team with a
        // thousand paused versions costs no thousand reads a round.
        {
            let mut idle = self
                .membership
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let now = std::time::Instant::now();
            match idle.get(key) {
                Some(at) if now.duration_since(*at) < IDLE_RECHECK => return,
                _ => {
                    idle.insert(key.clone(), now);
                }
            }
        }
        let _one_at_a_time = self.locks.of_name(&key.name).await;
        let held = self.store.cluster().is_some_and(|c| c.holds(key));
        if !held || self.daemon.is_running(key) {
            return;
        }
        match self.store.progress(key).await {
            Ok(p) if p.status == crate::store::RunStatus::Running => {
                tracing::info!(projection = %key, "held but not running here: starting it");
                self.membership
                    .idle
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(key);
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
    pub(in crate::service) async fn drop_orphan_shadows(&self) -> Result<(), ServiceError> {
        let recs = self.store.components().await?;
        let shadows: Vec<ProjectionKey> = recs.iter().map(|r| r.key.shadow()).collect();
        let held = self.lease_holders(&shadows).await;
        for rec in recs {
            let shadow = rec.key.shadow();
            if held.contains_key(&shadow) || self.store.progress(&shadow).await.is_err() {
                continue;
            }
            self.store.drop_projection(&shadow).await?;
            tracing::info!(projection = %rec.key, "dropped an unfinished candidate");
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
}
