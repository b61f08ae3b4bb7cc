//! Who may change the registry at a time. Deploys and lifecycle changes (promote,
//! retire, pause, rebuild, rewind, swaps, hot reloads) of one team go one at a
//! time; teams own disjoint names, so they never wait for each other: a retire
//! that waits out another team's page (up to its CPU deadline) holds only its own
//! team. Code is the one thing teams share (wasm files are kept by hash, and two
//! teams may upload the same bytes), so registering code and removing unused code
//! take a short lock of their own.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{Mutex, MutexGuard, OwnedMutexGuard};

use crate::store::Store;
use crate::store::cluster::TeamLock;

/// The per-team deploy locks and the code lock. Cheap to clone.
#[derive(Clone, Default)]
pub struct DeployLocks {
    /// One per configured team and `default`, made at start: names of other
    /// teams (which own nothing) share `others`, so no request grows the map.
    teams: Arc<HashMap<String, Arc<Mutex<()>>>>,
    others: Arc<Mutex<()>>,
    code: Arc<Mutex<()>>,
    /// A store several nodes share: each team's lock is also taken there, so a
    /// team's changes go one at a time across nodes.
    shared: Option<Arc<dyn Store>>,
}

/// A team's deploy lock, held until dropped (on every node, on a shared store).
pub struct TeamGuard {
    _across: Option<TeamLock>,
    _here: OwnedMutexGuard<()>,
}

impl DeployLocks {
    /// A lock for each of `teams` and for the `default` team.
    pub fn new<'a>(teams: impl IntoIterator<Item = &'a str>) -> Self {
        let names = teams
            .into_iter()
            .chain([crate::teams::DEFAULT_TEAM])
            .map(|t| (t.to_owned(), Arc::default()));
        Self {
            teams: Arc::new(names.collect()),
            ..Self::default()
        }
    }

    /// The same locks, also taken in `store` when several nodes share it.
    pub fn across(mut self, store: Arc<dyn Store>) -> Self {
        if store.cluster().is_some() {
            self.shared = Some(store);
        }
        self
    }

    /// Waits until `team` may change its versions; held for the whole change.
    pub async fn team(&self, team: &str) -> TeamGuard {
        let lock = self.teams.get(team).unwrap_or(&self.others);
        let here = lock.clone().lock_owned().await;
        let across = match self.shared.as_ref().and_then(|s| s.cluster()) {
            Some(c) if c.node().is_some() => match c.lock_team(team).await {
                Ok(l) => Some(l),
                Err(e) => {
                    // The change still goes on under this node's lock: the lease
                    // check keeps its agents' commits safe.
                    tracing::error!(team, "cannot take the team's lock across nodes: {e}");
                    None
                }
            },
            _ => None,
        };
        TeamGuard {
            _across: across,
            _here: here,
        }
    }

    /// [`DeployLocks::team`] for the team that owns the (internal) name `name`.
    pub async fn of_name(&self, name: &str) -> TeamGuard {
        self.team(crate::teams::team_of(name)).await
    }

    /// Waits until code may be registered or removed; held only while it is.
    pub async fn code(&self) -> MutexGuard<'_, ()> {
        self.code.lock().await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn one_team_waits_for_itself_and_never_for_another() {
        let locks = DeployLocks::new(["slow", "fast"]);
        let held = locks.team("slow").await;
        let quick = tokio::time::timeout(Duration::from_secs(1), locks.team("fast")).await;
        assert!(quick.is_ok(), "another team's change does not wait");
        let same = tokio::time::timeout(Duration::from_millis(50), locks.of_name("slow.x")).await;
        assert!(same.is_err(), "the same team's next change waits");
        drop(held);
        let after = tokio::time::timeout(Duration::from_secs(1), locks.of_name("slow.x")).await;
        assert!(after.is_ok(), "and goes once the first is done");
        // Names of teams nobody configured share one lock: no request grows the map.
        let _unknown = locks.of_name("nobody.x").await;
        assert_eq!(locks.teams.len(), 3, "slow, fast and default");
    }
}
