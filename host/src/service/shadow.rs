//! Shadow re-projection: a same-version hot reload or a rebuild of a projection runs
//! its candidate code into shadow tables (under [`ProjectionKey::shadow`]) while the
//! running code keeps serving reads and aggregates from the version's documents. Once
//! the candidate has caught up, the running agent is stopped, the candidate reaches
//! the position it had, and one store transaction swaps the candidate's documents and
//! progress in and records its code. A candidate that fails is dropped (its tables
//! too) and shown with its error; the running code never stops serving. Candidates
//! live in memory: a restart drops unfinished shadows and the registered code serves.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Refract, ServiceError};
use crate::daemon::PauseError;
use crate::deploy::VersionState;
use crate::runtime::{Fault, Loaded};
use crate::store::{ComponentRecord, Position, ProjectionKey, RunStatus, now_micros};

/// How long a swap waits for the candidate to reach the stopped version's position.
const SWAP_CATCH_UP: Duration = Duration::from_secs(30);
/// How often a candidate's watcher looks at it.
const WATCH_POLL: Duration = Duration::from_millis(25);

/// Why a candidate runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// A same-version hot reload (`refract dev`) with other code.
    Reload,
    /// A rebuild of the version with its own code.
    Rebuild,
}

/// A candidate build as `GET /projections` shows it under its version.
#[derive(Debug, Clone, Serialize)]
pub struct CandidateStatus {
    /// Hex SHA-256 of the candidate's code.
    pub sha256: String,
    /// Why it runs: `reload` or `rebuild`.
    pub cause: Cause,
    /// `building` (projecting into its shadow tables) or `failed` (dropped).
    pub state: &'static str,
    /// How far it got.
    pub position: Position,
    /// How many sequence numbers it is behind the head (when it failed, for a failed one).
    pub lag: i64,
    /// Events it applied.
    pub events_applied: u64,
    /// Why it failed.
    pub error: Option<PauseError>,
}

#[derive(Clone)]
struct Candidate {
    id: u64,
    sha256: String,
    cause: Cause,
    loaded: Loaded,
    /// Set once it failed: its error, and the position and count it reached.
    failed: Option<(PauseError, Position, u64)>,
}

/// The candidate of each version, and which candidate last swapped in.
#[derive(Default)]
pub(super) struct Candidates(std::sync::Mutex<Inner>);

#[derive(Default)]
struct Inner {
    next_id: u64,
    by_key: HashMap<ProjectionKey, Candidate>,
    swapped: HashMap<ProjectionKey, u64>,
}

impl Candidates {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The candidate `id` of `key` if it is still building.
    fn building(&self, key: &ProjectionKey, id: u64) -> Option<Candidate> {
        let inner = self.lock();
        let c = inner.by_key.get(key)?;
        (c.id == id && c.failed.is_none()).then(|| c.clone())
    }
}

/// What a swap attempt ended with.
enum SwapEnd {
    /// The candidate serves now.
    Swapped,
    /// Not yet: the running version goes on and the candidate is watched again.
    NotYet,
    /// The candidate is gone (failed, replaced, or its version retired).
    Gone,
}

impl Refract {
    /// Starts a candidate of `rec`'s version running `loaded` into shadow tables, in
    /// place of any candidate before it; returns its id. The caller holds the deploy
    /// lock and the version is a projection.
    pub(super) async fn start_candidate(
        self: &Arc<Self>,
        rec: &ComponentRecord,
        loaded: Loaded,
        cause: Cause,
    ) -> Result<u64, ServiceError> {
        let key = &rec.key;
        self.drop_candidate(key).await?;
        let shadow = key.shadow();
        let mut limited = loaded.clone();
        if let Some(limits) = self.teams.team(&rec.team).limits {
            limited.set_limits(limits);
        }
        let Loaded::Projection(component) = &limited else {
            return Err(ServiceError::NotFound(format!("projection {key}")));
        };
        self.store.prepare_projection(&shadow).await?;
        self.daemon.start_as(shadow, component);
        let id = {
            let mut inner = self.candidates.lock();
            inner.next_id += 1;
            let id = inner.next_id;
            let candidate = Candidate {
                id,
                sha256: loaded.sha256().to_owned(),
                cause,
                loaded,
                failed: None,
            };
            inner.by_key.insert(key.clone(), candidate);
            id
        };
        let (weak, key) = (Arc::downgrade(self), key.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(WATCH_POLL).await;
                let Some(svc) = weak.upgrade() else { return };
                match svc.look_at_candidate(&key, id).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(_) if svc.candidates.building(&key, id).is_none() => return,
                    Err(e) => tracing::warn!(projection = %key, "watching the candidate: {e}"),
                }
            }
        });
        Ok(id)
    }

    /// Stops and drops `key`'s candidate, if any, with its shadow tables. The caller
    /// holds the deploy lock.
    pub(super) async fn drop_candidate(&self, key: &ProjectionKey) -> Result<(), ServiceError> {
        let had = self.candidates.lock().by_key.remove(key);
        let shadow = key.shadow();
        self.daemon.stop(&shadow).await;
        self.store.drop_projection(&shadow).await?;
        if let Some(c) = had {
            tracing::info!(projection = %key, sha256 = %c.sha256, "candidate dropped");
        }
        Ok(())
    }

    /// Whether `key` has a candidate building `sha256`.
    pub(super) fn building_sha(&self, key: &ProjectionKey, sha256: &str) -> bool {
        let inner = self.candidates.lock();
        inner
            .by_key
            .get(key)
            .is_some_and(|c| c.failed.is_none() && c.sha256 == sha256)
    }

    /// Whether `key` has a candidate, building or failed.
    pub(super) fn has_candidate(&self, key: &ProjectionKey) -> bool {
        self.candidates.lock().by_key.contains_key(key)
    }

    /// Drops the shadow tables a killed daemon left behind: candidates do not survive
    /// a restart (the registered code and its documents are untouched by them).
    pub(super) async fn drop_stale_shadows(&self) -> Result<(), ServiceError> {
        for rec in self.store.components().await? {
            let shadow = rec.key.shadow();
            if self.store.progress(&shadow).await.is_ok() {
                self.store.drop_projection(&shadow).await?;
                tracing::info!(projection = %rec.key, "dropped an unfinished candidate");
            }
        }
        Ok(())
    }

    /// The candidate of `key` as its status shows it.
    pub(super) async fn candidate_status(
        &self,
        key: &ProjectionKey,
        head: Position,
    ) -> Result<Option<CandidateStatus>, ServiceError> {
        let Some(c) = self.candidates.lock().by_key.get(key).cloned() else {
            return Ok(None);
        };
        let (state, position, applied, error) = match c.failed {
            Some((e, position, applied)) => ("failed", position, applied, Some(e)),
            None => match self.store.progress(&key.shadow()).await {
                Ok(p) => ("building", p.position, p.events_applied, None),
                // Dropped or swapped since the lookup.
                Err(_) => ("building", 0, 0, None),
            },
        };
        Ok(Some(CandidateStatus {
            sha256: c.sha256,
            cause: c.cause,
            state,
            position,
            lag: (head - position).max(0),
            events_applied: applied,
            error,
        }))
    }

    /// Waits until candidate `id` of `key` has swapped in (returns the events it
    /// applied) or failed, was replaced, or `timeout` passed (an error saying which).
    pub async fn wait_candidate(
        &self,
        key: &ProjectionKey,
        id: u64,
        timeout: Duration,
    ) -> Result<u64, ServiceError> {
        let started = Instant::now();
        loop {
            let failed = {
                let inner = self.candidates.lock();
                if inner.swapped.get(key) == Some(&id) {
                    None
                } else {
                    match inner.by_key.get(key) {
                        Some(c) if c.id == id => Some(c.failed.clone()),
                        _ => {
                            return Err(ServiceError::Stalled(format!(
                                "{key}: the new build was replaced before it caught up"
                            )));
                        }
                    }
                }
            };
            match failed {
                None => return Ok(self.store.progress(key).await?.events_applied),
                Some(Some((e, ..))) => {
                    return Err(ServiceError::Stalled(format!(
                        "the new build failed: {}",
                        e.message
                    )));
                }
                Some(None) => {}
            }
            if started.elapsed() > timeout {
                return Err(ServiceError::Stalled(format!(
                    "{key}: the new build has not caught up after {timeout:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// One look of a candidate's watcher: records a failure, swaps it in once it and
    /// the running version are current. False when there is nothing left to watch.
    async fn look_at_candidate(&self, key: &ProjectionKey, id: u64) -> Result<bool, ServiceError> {
        if self.candidates.building(key, id).is_none() {
            return Ok(false);
        }
        let shadow = key.shadow();
        let running = self.daemon.is_running(&shadow);
        let p = self.store.progress(&shadow).await?;
        if p.status == RunStatus::Paused {
            self.fail_candidate(key, id).await?;
            return Ok(false);
        }
        if !running {
            // Stopped by a shutdown: nothing to swap.
            return Ok(false);
        }
        let head = self.store.head().await?;
        let live = self.store.progress(key).await?;
        let current = live.position >= head || live.status == RunStatus::Paused;
        if p.position < head || !current {
            return Ok(true);
        }
        let _one_at_a_time = self.deploy_lock.lock().await;
        let Some(c) = self.candidates.building(key, id) else {
            return Ok(false);
        };
        Ok(matches!(self.swap(key, c).await?, SwapEnd::NotYet))
    }

    /// Drops a candidate whose agent paused, keeping its error for the status.
    async fn fail_candidate(&self, key: &ProjectionKey, id: u64) -> Result<(), ServiceError> {
        let _one_at_a_time = self.deploy_lock.lock().await;
        let Some(c) = self.candidates.building(key, id) else {
            return Ok(());
        };
        let shadow = key.shadow();
        let p = self.store.progress(&shadow).await?;
        let text = p.error.unwrap_or_default();
        let mut error = serde_json::from_str(&text).unwrap_or_else(|_| PauseError {
            component: String::new(),
            event_sequence: None,
            message: text,
            fault: Fault::Host,
        });
        error.component = format!("{key} (candidate {})", short(&c.sha256));
        self.record_failure(key, &c, error, p.position, p.events_applied)
            .await
    }

    /// Stops a failed candidate, drops its tables and keeps `error` for the status.
    async fn record_failure(
        &self,
        key: &ProjectionKey,
        c: &Candidate,
        error: PauseError,
        position: Position,
        applied: u64,
    ) -> Result<(), ServiceError> {
        let shadow = key.shadow();
        self.daemon.stop(&shadow).await;
        tracing::error!(
            projection = %key,
            sha256 = %c.sha256,
            "the candidate build failed: {}; the running build keeps serving",
            error.message
        );
        if let Some(mine) = self.candidates.lock().by_key.get_mut(key) {
            if mine.id == c.id {
                mine.failed = Some((error, position, applied));
            }
        }
        self.store.drop_projection(&shadow).await?;
        Ok(())
    }

    /// Stops the running version, lets the candidate reach its position and swaps it
    /// in; on anything short of a swap the running version is started again. The
    /// caller holds the deploy lock.
    async fn swap(&self, key: &ProjectionKey, c: Candidate) -> Result<SwapEnd, ServiceError> {
        let rec = self.store.components().await?.into_iter().find(|r| &r.key == key);
        let Some(rec) = rec.filter(|r| VersionState::parse(&r.state) != VersionState::Retired)
        else {
            self.drop_candidate(key).await?;
            return Ok(SwapEnd::Gone);
        };
        let previous = self.loaded_components().get(key).cloned();
        let was_running = self.daemon.is_running(key);
        self.daemon.stop(key).await;
        let end = self.swap_stopped(&rec, &c).await;
        if !matches!(end, Ok(SwapEnd::Swapped)) && was_running {
            if let Some(previous) = previous {
                self.run(key.clone(), &rec.team, previous);
            }
        }
        if let Err(e) = &end {
            let error = PauseError {
                component: format!("{key} (candidate {})", short(&c.sha256)),
                event_sequence: None,
                message: format!("could not be swapped in: {e}"),
                fault: Fault::Host,
            };
            self.record_failure(key, &c, error, 0, 0).await?;
        }
        end
    }

    async fn swap_stopped(
        &self,
        rec: &ComponentRecord,
        c: &Candidate,
    ) -> Result<SwapEnd, ServiceError> {
        let (key, shadow) = (&rec.key, rec.key.shadow());
        // The candidate goes on until it has everything the stopped version had:
        // after the swap, reads never go back in time.
        let target = self.store.progress(key).await?.position;
        let started = Instant::now();
        loop {
            let p = self.store.progress(&shadow).await?;
            if p.position >= target {
                break;
            }
            if p.status == RunStatus::Paused || started.elapsed() > SWAP_CATCH_UP {
                return Ok(SwapEnd::NotYet);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.daemon.stop(&shadow).await;
        let new = ComponentRecord {
            sha256: c.sha256.clone(),
            event_types: c.loaded.event_types().to_vec(),
            deployed_at: now_micros(),
            kind: c.loaded.kind().as_str().into(),
            ..rec.clone()
        };
        self.store.swap_shadow(&new).await?;
        {
            let mut inner = self.candidates.lock();
            inner.by_key.remove(key);
            inner.swapped.insert(key.clone(), c.id);
        }
        self.run(key.clone(), &rec.team, c.loaded.clone());
        tracing::info!(
            projection = %key,
            previous = %rec.sha256,
            sha256 = %c.sha256,
            cause = ?c.cause,
            "the candidate caught up and was swapped in"
        );
        Ok(SwapEnd::Swapped)
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}
