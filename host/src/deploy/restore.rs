//! Which versions run after a restart: every one not retired, loaded again from the
//! data directory; a version deployed with auto-promote that was still catching up
//! is watched again.

use std::path::Path;

use super::files::read_wasm;
use super::start::prepare;
use super::{DeployError, Lifecycle, VersionState, load};
use crate::runtime::{Loaded, Runtime};
use crate::store::{ComponentRecord, RunStatus};

impl Lifecycle {
    /// Loads every registered component that is to run from the data directory,
    /// for a restart, and watches again the ones waiting to be auto-promoted. A
    /// component that cannot be loaded is reported and, if `pause_failures`, paused
    /// (a node among several leaves that to the node that claims it); the others
    /// still start.
    pub async fn restore(
        &self,
        runtime: &Runtime,
        components_dir: &Path,
        teams: &crate::teams::Teams,
        pause_failures: bool,
    ) -> Result<Vec<(ComponentRecord, Loaded)>, DeployError> {
        let store = self.store.as_ref();
        let mut out = Vec::new();
        for rec in store.components().await? {
            let state = VersionState::parse(&rec.state);
            if rec.auto_promote && state == VersionState::CatchingUp {
                self.auto_promote(rec.key.clone());
            }
            if state == VersionState::Retired {
                continue;
            }
            let limits = teams.team(&rec.team).limits;
            match self
                .restore_one(runtime, components_dir, &rec, limits)
                .await
            {
                Ok(loaded) => out.push((rec, loaded)),
                Err(e) if !pause_failures => {
                    tracing::error!(projection = %rec.key, "cannot load here: {e}");
                }
                Err(e) => {
                    tracing::error!(projection = %rec.key, "cannot restore: {e}");
                    let msg = format!("cannot be loaded after a restart: {e}");
                    store
                        .set_status(&rec.key, RunStatus::Paused, Some(&msg))
                        .await?;
                }
            }
        }
        Ok(out)
    }

    /// Loads one registered component (from the data directory, else the shared
    /// store) under its team's limits and makes sure its tables exist.
    pub async fn restore_one(
        &self,
        runtime: &Runtime,
        components_dir: &Path,
        rec: &ComponentRecord,
        limits: Option<crate::runtime::Limits>,
    ) -> Result<Loaded, DeployError> {
        let wasm = read_wasm(self.store.as_ref(), components_dir, &rec.sha256).await?;
        // `describe` again under the team's limits, as at deploy.
        let (loaded, _) = load(runtime, wasm, limits).await?;
        prepare(self.store.as_ref(), &rec.key, &loaded).await?;
        tracing::info!(projection = %rec.key, from_cache = loaded.from_cache(), "restored");
        Ok(loaded)
    }
}
