//! Lifecycle changes of deployed versions: promote (and roll back), retire, the
//! auto-promote watcher, and rewinding a subscription to replay from a position.

use std::sync::Arc;

use tokio::sync::Mutex;

use super::{Refract, ServiceError};
use crate::deploy::{LifecycleError, VersionState};
use crate::store::{Components, Position, ProjectionKey, Store};

impl Refract {
    /// Moves a subscription version to `position` (clamped to the store's head) and
    /// restarts it from there: a replay. Its emits and messages carry the same
    /// idempotency keys and message ids as the first time, so nothing fires twice by
    /// accident, and every event up to the furthest position the version ever
    /// committed handles with effects held, unless `replay_effects` (then its emits
    /// and sends after `position` are performed again). Projections are rebuilt by
    /// deploying again instead.
    pub async fn rewind(
        &self,
        name: &str,
        version: u32,
        position: Position,
        replay_effects: bool,
    ) -> Result<Position, ServiceError> {
        let _one_at_a_time = self.deploy_lock.lock().await;
        let (target, loaded) = self.running(name, version).await?;
        if target.kind != "subscription" {
            return Err(LifecycleError::RewindProjection {
                name: name.into(),
                version,
            }
            .into());
        }
        let position = position.clamp(0, self.store.head().await?);
        self.daemon.stop(&target.key).await;
        let rewound = self
            .store
            .rewind(&target.key, position, replay_effects)
            .await;
        // Running again either way: from the new position, or the old one.
        self.run(target.key.clone(), &target.team, loaded);
        rewound?;
        tracing::info!(subscription = %target.key, position, replay_effects, "rewound");
        Ok(position)
    }

    /// Rebuilds a version from the first event with the same code. A projection
    /// rebuilds as a candidate into shadow tables while its documents keep serving,
    /// and swaps in once caught up (see `shadow`). A subscription's agent stops, its
    /// progress is recreated at its start position and it runs again.
    pub async fn rebuild(self: &Arc<Self>, name: &str, version: u32) -> Result<(), ServiceError> {
        let _one_at_a_time = self.deploy_lock.lock().await;
        let (target, loaded) = self.running(name, version).await?;
        if target.kind != "subscription" {
            self.start_candidate(&target, loaded, super::Cause::Rebuild)
                .await?;
            tracing::info!(projection = %target.key, "rebuilding from the first event beside the served documents");
            return Ok(());
        }
        self.daemon.stop(&target.key).await;
        let reset = crate::deploy::reset(self.store.as_ref(), &target.key, &loaded).await;
        // Running again either way.
        self.run(target.key.clone(), &target.team, loaded);
        reset?;
        tracing::info!(projection = %target.key, "rebuilding from the first event");
        Ok(())
    }

    /// A version that is not retired, with its running component.
    pub(super) async fn running(
        &self,
        name: &str,
        version: u32,
    ) -> Result<(crate::store::ComponentRecord, crate::runtime::Loaded), ServiceError> {
        let target = find(self.store.as_ref(), name, version).await?;
        if VersionState::parse(&target.state) == VersionState::Retired {
            return Err(LifecycleError::Retired {
                name: name.into(),
                version,
            }
            .into());
        }
        let loaded = self
            .loaded_components()
            .get(&target.key)
            .cloned()
            .ok_or_else(|| {
                ServiceError::NotFound(format!("running component for {}", target.key))
            })?;
        Ok((target, loaded))
    }

    /// The position just before the first event recorded at or after `micros`.
    pub async fn position_at_time(&self, micros: i64) -> Result<Position, ServiceError> {
        Ok(self.store.position_at_time(micros).await?)
    }

    /// Makes a version the live one (the live one before it goes to standby). A
    /// version still catching up is refused unless `force`.
    pub async fn promote(&self, name: &str, version: u32, force: bool) -> Result<(), ServiceError> {
        let _one_at_a_time = self.deploy_lock.lock().await;
        promote(self.store.as_ref(), name, version, force).await
    }

    /// Stops a version's agent and drops its documents and progress; the live
    /// version cannot be retired. Retiring again finishes an interrupted retire.
    pub async fn retire(&self, name: &str, version: u32) -> Result<(), ServiceError> {
        let _one_at_a_time = self.deploy_lock.lock().await;
        let target = find(self.store.as_ref(), name, version).await?;
        if VersionState::parse(&target.state) == VersionState::Live {
            return Err(LifecycleError::RetireLive {
                name: name.into(),
                version,
            }
            .into());
        }
        // Recorded first: a crash before the drop leaves a retired version that a
        // restart does not start and a second retire drops.
        self.store
            .set_states(&[(target.key.clone(), VersionState::Retired.as_str())])
            .await?;
        self.daemon.stop(&target.key).await;
        self.drop_candidate(&target.key).await?;
        self.loaded_components().remove(&target.key);
        self.store.drop_projection(&target.key).await?;
        self.remove_unused_code(&target.sha256).await;
        tracing::info!(projection = %target.key, "retired");
        Ok(())
    }
}

/// The registered version `name`@`version`, or `NotFound`.
pub(super) async fn find(
    store: &dyn Store,
    name: &str,
    version: u32,
) -> Result<crate::store::ComponentRecord, ServiceError> {
    let key = ProjectionKey {
        name: name.into(),
        version,
    };
    store
        .component(&key)
        .await?
        // Found by name, it must also belong to the team the name's namespace says
        // (else it is not found, exactly as if it did not exist).
        .filter(|c| c.team == crate::teams::team_of(name))
        .ok_or_else(|| {
            ServiceError::ProjectionNotFound(format!("projection {name} version {version}"))
        })
}

/// Makes a version live and the live one standby; the caller holds the deploy lock.
async fn promote(
    store: &dyn Store,
    name: &str,
    version: u32,
    force: bool,
) -> Result<(), ServiceError> {
    let target = find(store, name, version).await?;
    match VersionState::parse(&target.state) {
        VersionState::Live => return Ok(()),
        VersionState::Retired => {
            return Err(LifecycleError::Retired {
                name: name.into(),
                version,
            }
            .into());
        }
        VersionState::CatchingUp if !force => {
            let lag = store.head().await? - store.progress(&target.key).await?.position;
            if lag > 0 {
                return Err(LifecycleError::NotCaughtUp {
                    name: name.into(),
                    version,
                    lag,
                }
                .into());
            }
        }
        _ => {}
    }
    let live = VersionState::Live.as_str();
    let standby = VersionState::Standby.as_str();
    let mut changes = vec![(target.key.clone(), live)];
    changes.extend(
        store
            .components_where(Components::Name(name))
            .await?
            .iter()
            .filter(|c| c.key != target.key)
            .filter(|c| VersionState::parse(&c.state) == VersionState::Live)
            .map(|c| (c.key.clone(), standby)),
    );
    store.set_states(&changes).await?;
    tracing::info!(projection = %target.key, "promoted to live");
    Ok(())
}

/// Watches a version deployed with `auto_promote` and promotes it once it has
/// caught up, unless someone changed its state first.
pub(super) fn spawn_auto_promote(store: Arc<dyn Store>, lock: Arc<Mutex<()>>, key: ProjectionKey) {
    tokio::spawn(async move {
        let mut head = store.watch_head();
        loop {
            let state = match store.component(&key).await {
                Ok(c) => c.map(|c| VersionState::parse(&c.state)),
                Err(e) => {
                    tracing::warn!(projection = %key, "auto-promote: {e}");
                    None
                }
            };
            if state != Some(VersionState::CatchingUp) {
                return;
            }
            let caught_up = match (store.head().await, store.progress(&key).await) {
                (Ok(h), Ok(p)) => p.position >= h,
                _ => false,
            };
            if caught_up {
                let _one_at_a_time = lock.lock().await;
                match promote(store.as_ref(), &key.name, key.version, false).await {
                    Ok(()) => tracing::info!(projection = %key, "auto-promoted: caught up"),
                    Err(e) => tracing::warn!(projection = %key, "auto-promote: {e}"),
                }
                return;
            }
            tokio::select! {
                _ = head.changed() => {}
                _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
            }
        }
    });
}
