//! The one place versions' lifecycle states change, and what running agents are
//! told of them: each subscription agent reads a plain flag (standby or not) per
//! page instead of the registry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::VersionState;
use crate::store::{ProjectionKey, Store, StoreError};

/// The lifecycle decisions of one daemon's versions: their state changes, the
/// standby flags handed to their agents, promotes and auto-promote watchers.
#[derive(Clone)]
pub struct Lifecycle {
    pub(super) store: Arc<dyn Store>,
    /// The service's deploy locks: an auto-promote takes its team's like a promote
    /// call.
    pub(super) lock: super::DeployLocks,
    /// Whether each version that ran is a standby. Once made, a flag is kept up to
    /// date by every state change, which all go through [`Lifecycle::set_states`].
    standbys: Arc<Mutex<HashMap<ProjectionKey, watch::Sender<bool>>>>,
}

impl Lifecycle {
    /// The lifecycle of the versions in `store`, changed under `lock`.
    pub fn new(store: Arc<dyn Store>, lock: super::DeployLocks) -> Self {
        Self {
            store,
            lock,
            standbys: Default::default(),
        }
    }

    /// Records new states of versions (at once) and tells their agents.
    pub async fn set_states(
        &self,
        changes: &[(ProjectionKey, VersionState)],
    ) -> Result<(), StoreError> {
        let stored: Vec<(ProjectionKey, &str)> = changes
            .iter()
            .map(|(key, state)| (key.clone(), state.as_str()))
            .collect();
        // With several nodes, the versions whose state changes are taken over by
        // this node first: an agent elsewhere, told of the change only when its
        // node next reads the registry, commits nothing more (a subscription that
        // went to standby performs no effect there); this node runs them next.
        if let Some(c) = self.store.cluster()
            && c.node().is_some()
        {
            for (key, _) in changes {
                c.claim(key, true).await?;
            }
        }
        self.store.set_states(&stored).await?;
        self.note_states(changes);
        Ok(())
    }

    /// Tells this process's agents of states already recorded (by this process,
    /// or by another node on a shared store).
    pub fn note_states(&self, changes: &[(ProjectionKey, VersionState)]) {
        let mut flags = self.standbys.lock().unwrap_or_else(|p| p.into_inner());
        for (key, state) in changes {
            if *state == VersionState::Retired {
                // A retired version never runs again (its key cannot be deployed
                // again): its flag goes, so the map holds only versions that can run.
                flags.remove(key);
                continue;
            }
            let standby = *state == VersionState::Standby;
            // Made here if no agent asked yet: one asking later finds it current.
            flags
                .entry(key.clone())
                .or_insert_with(|| watch::channel(standby).0)
                .send_replace(standby);
        }
    }

    /// The standby flag of `key`, made from `state` (read from the registry) unless
    /// a state change made it already (it is then the newer).
    pub(super) fn standby_flag(
        &self,
        key: &ProjectionKey,
        state: Option<VersionState>,
    ) -> watch::Receiver<bool> {
        let mut flags = self.standbys.lock().unwrap_or_else(|p| p.into_inner());
        flags
            .entry(key.clone())
            .or_insert_with(|| watch::channel(state == Some(VersionState::Standby)).0)
            .subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ComponentRecord;

    fn rec(version: u32, state: VersionState) -> ComponentRecord {
        ComponentRecord {
            key: ProjectionKey {
                name: "sub".into(),
                version,
            },
            team: crate::teams::DEFAULT_TEAM.into(),
            sha256: format!("{version:064}"),
            event_types: vec!["Poke".into()],
            state: state.as_str().into(),
            deployed_at: 0,
            auto_promote: false,
            kind: "subscription".into(),
        }
    }

    #[tokio::test]
    async fn a_running_version_learns_it_became_a_standby_and_live_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite = crate::store::sqlite::SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open");
        let store: Arc<dyn Store> = Arc::new(sqlite);
        let (v1, v2) = (rec(1, VersionState::Live), rec(2, VersionState::CatchingUp));
        for r in [&v1, &v2] {
            store.save_component(r).await.expect("save");
            store.prepare_projection(&r.key).await.expect("prepare");
        }
        let lifecycle = Lifecycle::new(store.clone(), Default::default());
        let held = lifecycle.hold(&v1.key, false).await.expect("hold");
        assert!(!*held.standby.borrow());
        assert_eq!(held.others_reached, 0);

        lifecycle.promote(&v2, true).await.expect("promote v2");
        assert!(*held.standby.borrow(), "v1 is told at once");
        let v2_held = lifecycle.hold(&v2.key, true).await.expect("hold v2");
        assert!(!*v2_held.standby.borrow());

        let v1_now = store.component(&v1.key).await.expect("read").expect("v1");
        lifecycle.promote(&v1_now, false).await.expect("roll back");
        assert!(!*held.standby.borrow());
        assert!(*v2_held.standby.borrow());
    }
}
