//! Lifecycle changes of deployed versions, under the team's deploy lock: promote (and roll
//! back; decided in `deploy`), retire, and rewinding or rebuilding a subscription.

use std::sync::Arc;

use super::{Refract, ServiceError};
use crate::deploy::{LifecycleError, VersionState};
use crate::store::{Position, ProjectionKey, Store};

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
        let _one_at_a_time = self.locks.of_name(name).await;
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
        self.run(target.key.clone(), &target.team, loaded).await;
        rewound?;
        tracing::info!(subscription = %target.key, position, replay_effects, "rewound");
        Ok(position)
    }

    /// Rebuilds a version from the first event with the same code. A projection
    /// rebuilds as a candidate into shadow documents while its documents keep serving,
    /// and swaps in once caught up (see `shadow`). A subscription's agent stops, its
    /// progress is recreated at its start position and it runs again.
    pub async fn rebuild(self: &Arc<Self>, name: &str, version: u32) -> Result<(), ServiceError> {
        let _one_at_a_time = self.locks.of_name(name).await;
        let (target, loaded) = self.running(name, version).await?;
        if self.is_live(&target.key) {
            return Err(crate::daemon::DaemonError::Unsupported(format!(
                "{name} version {version} is live: it keeps no documents, so there is nothing \
                 to rebuild (every read folds its stream)"
            ))
            .into());
        }
        if target.kind != "subscription" {
            self.start_candidate(&target, loaded, super::Cause::Rebuild)
                .await?;
            tracing::info!(projection = %target.key, "rebuilding from the first event beside the served documents");
            return Ok(());
        }
        self.daemon.stop(&target.key).await;
        let reset = crate::deploy::reset(self.store.as_ref(), &target.key, &loaded).await;
        // Running again either way.
        self.run(target.key.clone(), &target.team, loaded).await;
        reset?;
        tracing::info!(projection = %target.key, "rebuilding from the first event");
        Ok(())
    }

    /// Stops a version's agent and puts new code under it (the caller starts it
    /// again): a hotfix keeps its documents, a hot reload starts it over.
    pub(super) async fn stop_and_put_code(
        &self,
        rec: &crate::store::ComponentRecord,
        loaded: &crate::runtime::Loaded,
        wasm: &[u8],
        how: crate::deploy::NewCode,
    ) -> Result<crate::deploy::Deployed, crate::deploy::DeployError> {
        self.daemon.stop(&rec.key).await;
        let (store, dir) = (self.store.as_ref(), &self.components_dir);
        let _code = self.locks.code().await;
        crate::deploy::put_code(store, dir, loaded, wasm, rec, how).await
    }

    /// A version that is not retired, with its running component.
    pub(super) async fn running(
        &self,
        name: &str,
        version: u32,
    ) -> Result<(crate::store::ComponentRecord, crate::runtime::Loaded), ServiceError> {
        let target = find_unless(self.store.as_ref(), name, version, VersionState::Retired).await?;
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
        let _one_at_a_time = self.locks.of_name(name).await;
        let target = find(self.store.as_ref(), name, version).await?;
        // A live version is never behind: it folds on read.
        let force = force || self.is_live(&target.key);
        Ok(self.lifecycle.promote(&target, force).await?)
    }

    /// Stops a version's agent and drops its documents and progress; the live
    /// version cannot be retired. Retiring again finishes an interrupted retire.
    pub async fn retire(&self, name: &str, version: u32) -> Result<(), ServiceError> {
        let _one_at_a_time = self.locks.of_name(name).await;
        let target = find_unless(self.store.as_ref(), name, version, VersionState::Live).await?;
        // Recorded first: a crash before the drop leaves a retired version that a
        // restart does not start and a second retire drops.
        self.lifecycle
            .set_states(&[(target.key.clone(), VersionState::Retired)])
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

/// The registered version `name`@`version` ([`find`]), refused when it is in
/// `state`: a retired version cannot run or be paused (`Retired`), the live one
/// cannot be retired (`RetireLive`).
pub(super) async fn find_unless(
    store: &dyn Store,
    name: &str,
    version: u32,
    state: VersionState,
) -> Result<crate::store::ComponentRecord, ServiceError> {
    let target = find(store, name, version).await?;
    if VersionState::parse(&target.state) != state {
        return Ok(target);
    }
    let name = name.into();
    Err(match state {
        VersionState::Live => LifecycleError::RetireLive { name, version },
        _ => LifecycleError::Retired { name, version },
    }
    .into())
}

impl From<LifecycleError> for ServiceError {
    /// A refusal is the lifecycle's; a store failure is the store's, as anywhere else.
    fn from(e: LifecycleError) -> Self {
        match e {
            LifecycleError::Store(e) => Self::Store(e),
            refused => Self::Lifecycle(refused),
        }
    }
}
