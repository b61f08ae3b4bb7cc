//! Deploying a new version: compiled outside any deploy lock, counted against the
//! team's components, registered, and started.

use super::{Refract, ServiceError, cleanup};
use crate::deploy::{self, Deployed, LifecycleError, VersionState};
use crate::runtime::Loaded;
use crate::store::{Components, ProjectionKey};

impl Refract {
    /// Deploys a component for `team` from its wasm bytes and starts its agent; with
    /// `auto_promote`, a version deployed beside a live one is promoted once caught up.
    pub async fn deploy(
        &self,
        wasm: Vec<u8>,
        auto_promote: bool,
        team: &str,
    ) -> Result<Deployed, ServiceError> {
        // Compile and describe first, outside the lock and under the team's limits:
        // a guest's describe must never hold another team's deploy.
        let sha256 = cleanup::sha256_hex(&wasm);
        let loaded = self.load_upload(team, wasm).await;
        let _one_at_a_time = self.locks.team(team).await;
        let result = match loaded {
            Ok((loaded, wasm)) => self.deploy_locked(loaded, wasm, auto_promote, team).await,
            Err(e) => Err(e),
        };
        if result.is_err() {
            // A refused upload leaves no compiled artifact or wasm behind (unless a
            // deployed version uses the same code). Under the lock: a deploy of the
            // same code in flight registers first.
            self.remove_unused_code(&sha256).await;
        }
        result
    }

    /// [`Refract::deploy`] under the team's deploy lock, once compiled and described.
    async fn deploy_locked(
        &self,
        loaded: Loaded,
        wasm: Vec<u8>,
        auto_promote: bool,
        team: &str,
    ) -> Result<Deployed, ServiceError> {
        let key = deploy::key_in(team, &loaded);
        self.check_declared_lifecycle(&key, &loaded)?;
        if let Some(max) = self.teams.team(team).max_components {
            let comps = self.store.components_where(Components::Team(team)).await?;
            let has = |c: &&crate::store::ComponentRecord| {
                c.team == team && VersionState::parse(&c.state) != VersionState::Retired
            };
            let existing = comps.iter().filter(has).any(|c| c.key == key);
            let count = comps.iter().filter(has).count();
            if !existing && count >= max {
                return Err(LifecycleError::TooManyComponents {
                    team: team.into(),
                    max,
                }
                .into());
            }
        }
        let (out, _) = self
            .register_and_run(key, loaded, &wasm, auto_promote, team)
            .await?;
        Ok(out)
    }

    /// Registers a described component and starts the agent of a version that is new
    /// (remembering its component; with `auto_promote`, watched until it may be
    /// promoted). Answers whether it was new: the same code registered already is not.
    pub(super) async fn register_and_run(
        &self,
        key: ProjectionKey,
        loaded: Loaded,
        wasm: &[u8],
        auto_promote: bool,
        team: &str,
    ) -> Result<(Deployed, bool), ServiceError> {
        let dir = &self.components_dir;
        let store = self.store.as_ref();
        let registered = {
            let _code = self.locks.code().await;
            deploy::register(store, dir, loaded, wasm, auto_promote, team).await
        };
        let (out, new) = registered?;
        let Some(loaded) = new else {
            return Ok((out, false));
        };
        self.run(key.clone(), team, loaded).await;
        if auto_promote && out.state == VersionState::CatchingUp.as_str() {
            match self.store.component(&key).await? {
                // Never behind (it folds on read): promoted now, under this deploy's lock.
                Some(rec) if self.is_live(&key) => self.lifecycle.promote(&rec, true).await?,
                _ => self.lifecycle.auto_promote(key),
            }
        }
        Ok((out, true))
    }
}
