//! Development hot reload: a component file that changed is deployed when its
//! version is new. When it declares a projection version that is already deployed,
//! it becomes that version's candidate: it projects into shadow documents while the
//! running code serves, and swaps in once caught up (see `shadow`). A subscription
//! version is replaced in place (its progress restarts).

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Cause, Refract, ServiceError};
use crate::deploy::{self, Deployed, LifecycleError, VersionState};
use crate::runtime::Loaded;
use crate::store::{Position, ProjectionKey, RunStatus};

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// A name or version not deployed before: deployed (beside an older live version
    /// it is promoted once caught up).
    Deployed,
    /// The same projection version with new code: a candidate re-projects it from the
    /// start beside the running code and swaps in once caught up.
    Candidate {
        /// Hex SHA-256 of the code it is to replace.
        previous_sha256: String,
        /// The candidate, for [`Refract::wait_reloaded`].
        id: u64,
    },
    /// The same subscription version with new code: swapped in place, from its start.
    Replaced {
        /// Hex SHA-256 of the code it replaced.
        previous_sha256: String,
    },
    /// The code deployed under that version already: nothing changed.
    Unchanged,
}

/// The outcome of [`Refract::reload`], with what it took.
#[derive(Debug, Clone)]
pub struct Reloaded {
    /// What was done.
    pub action: Reload,
    /// The version as registered now.
    pub deployed: Deployed,
    /// Time to compile (or load the cached artifact) and validate the component.
    pub compile: Duration,
    /// Whether the compiled artifact came from the cache.
    pub from_cache: bool,
    /// The store's last sequence when the new code started: caught up once there.
    pub head: Position,
}

impl Reloaded {
    /// The projection version this reload is about.
    pub fn key(&self) -> ProjectionKey {
        ProjectionKey {
            name: self.deployed.name.clone(),
            version: self.deployed.version,
        }
    }
}

impl Refract {
    /// Loads a component for development: a new version is deployed (with
    /// auto-promote); the same projection version with other code becomes its
    /// candidate (the running code serves until the candidate has caught up and swaps
    /// in; a failing candidate is dropped); the same subscription version is replaced
    /// in place. A component that fails to load changes nothing: what ran keeps running.
    pub async fn reload(self: &Arc<Self>, wasm: Vec<u8>) -> Result<Reloaded, ServiceError> {
        let (loaded, wasm) = self.load_upload(crate::teams::DEFAULT_TEAM, wasm).await?;
        let _one_at_a_time = self.locks.team(crate::teams::DEFAULT_TEAM).await;
        let (compile, from_cache) = (loaded.load_time(), loaded.from_cache());
        // Development runs as the implicit team.
        let team = crate::teams::DEFAULT_TEAM;
        let key = deploy::key_in(team, &loaded);
        let existing = self.store.component(&key).await?;
        if existing
            .as_ref()
            .is_some_and(|r| r.sha256 == loaded.sha256())
            && self.has_candidate(&key)
        {
            // Back to the code that serves: the candidate is not wanted any more.
            self.drop_candidate(&key).await?;
        }
        // A live version (or a build that is live) has no documents for a candidate
        // to rebuild beside: its code is replaced in place.
        let projection = match &loaded {
            Loaded::Projection(l) => {
                self.lifecycle_for(&key, &l.descriptor, false) != crate::runtime::Lifecycle::Live
                    && !self.is_live(&key)
            }
            Loaded::Subscription(_) => false,
        };
        let (action, deployed) = match existing {
            Some(rec)
                if rec.sha256 != loaded.sha256() && projection && rec.kind != "subscription" =>
            {
                if VersionState::parse(&rec.state) == VersionState::Retired {
                    return Err(LifecycleError::Retired {
                        name: key.name,
                        version: key.version,
                    }
                    .into());
                }
                let deployed = Deployed {
                    name: rec.key.name.clone(),
                    version: rec.key.version,
                    event_types: loaded.event_types().to_vec(),
                    sha256: loaded.sha256().to_owned(),
                    created: true,
                    state: rec.state.clone(),
                };
                if self.building_sha(&key, loaded.sha256()) {
                    (Reload::Unchanged, deployed)
                } else {
                    // The code is in use (a candidate) before any team's cleanup looks.
                    let code = self.locks.code().await;
                    deploy::save_wasm(
                        self.store.as_ref(),
                        &self.components_dir,
                        loaded.sha256(),
                        &wasm,
                    )
                    .await?;
                    let id = self.start_candidate(&rec, loaded, Cause::Reload).await?;
                    drop(code);
                    let action = Reload::Candidate {
                        previous_sha256: rec.sha256,
                        id,
                    };
                    (action, deployed)
                }
            }
            Some(rec) if rec.sha256 != loaded.sha256() => {
                if VersionState::parse(&rec.state) == VersionState::Retired {
                    return Err(LifecycleError::Retired {
                        name: key.name,
                        version: key.version,
                    }
                    .into());
                }
                let replaced = self
                    .stop_and_put_code(&rec, &loaded, &wasm, deploy::NewCode::FromStart)
                    .await;
                let deployed = match replaced {
                    Ok(d) => d,
                    Err(e) => {
                        self.run_previous(key, &rec.team).await;
                        return Err(e.into());
                    }
                };
                self.run(key, &rec.team, loaded).await;
                let action = Reload::Replaced {
                    previous_sha256: rec.sha256,
                };
                (action, deployed)
            }
            _ => {
                let (out, new) = self
                    .register_and_run(key, loaded, &wasm, true, team)
                    .await?;
                let action = if new {
                    Reload::Deployed
                } else {
                    Reload::Unchanged
                };
                (action, out)
            }
        };
        Ok(Reloaded {
            action,
            deployed,
            compile,
            from_cache,
            head: self.store.head().await?,
        })
    }

    /// Waits until what a reload started is done: its candidate swapped in (returns
    /// the events it applied) or the version projected everything up to the reload's
    /// head (returns how many events it applied). An error says why not: the version
    /// paused, its candidate failed or was replaced, or `timeout` passed first.
    pub async fn wait_reloaded(
        &self,
        done: &Reloaded,
        timeout: Duration,
    ) -> Result<u64, ServiceError> {
        let key = &done.key();
        match done.action {
            Reload::Candidate { id, .. } => {
                let every = Duration::from_millis(20);
                poll_until(timeout, every, || self.candidate_done(key, id)).await
            }
            _ => {
                let every = Duration::from_millis(10);
                poll_until(timeout, every, || self.caught_up(key, done.head)).await
            }
        }
    }

    /// Whether `key` has projected everything up to `head` (the events it applied);
    /// an error if it paused.
    async fn caught_up(
        &self,
        key: &ProjectionKey,
        head: Position,
    ) -> Result<ControlFlow<u64, String>, ServiceError> {
        if self.is_live(key) {
            // Folded on read: never behind.
            return Ok(ControlFlow::Break(0));
        }
        let p = self.store.progress(key).await?;
        if p.position >= head {
            return Ok(ControlFlow::Break(p.events_applied));
        }
        if p.status == RunStatus::Paused {
            return Err(ServiceError::Stalled(format!(
                "{key} paused: {}",
                p.error.unwrap_or_default()
            )));
        }
        let behind = format!("{key} is still at {} of {head}", p.position);
        Ok(ControlFlow::Continue(behind))
    }
}

/// Runs `check` every `every` until it is done (`Break`) or fails. Once `timeout`
/// has passed, `Stalled`: the text of its last `Continue` (what is not done yet),
/// "after" the timeout.
async fn poll_until<T, Check>(
    timeout: Duration,
    every: Duration,
    mut check: impl FnMut() -> Check,
) -> Result<T, ServiceError>
where
    Check: Future<Output = Result<ControlFlow<T, String>, ServiceError>>,
{
    let started = Instant::now();
    loop {
        let waiting = match check().await? {
            ControlFlow::Break(done) => return Ok(done),
            ControlFlow::Continue(waiting) => waiting,
        };
        if started.elapsed() > timeout {
            return Err(ServiceError::Stalled(format!(
                "{waiting} after {timeout:?}"
            )));
        }
        tokio::time::sleep(every).await;
    }
}
