//! Shadow re-projection: a same-version hot reload or a rebuild of a projection runs
//! its candidate code into shadow documents (under [`ProjectionKey::shadow`]) while the
//! running code keeps serving reads and aggregates from the version's documents. Once
//! the candidate has caught up, the running agent is stopped, the candidate reaches
//! the position it had, and one store transaction swaps the candidate's documents and
//! progress in and records its code. A candidate that fails is dropped (its tables
//! too) and shown with its error; the running code never stops serving. Candidates
//! live in memory: a restart drops unfinished shadows and the registered code serves.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use serde::Serialize;

mod swap;

use super::{Refract, ServiceError};
use crate::daemon::PauseError;
use crate::runtime::Loaded;
use crate::store::{ComponentRecord, Position, ProjectionKey};

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
    /// `building` (projecting into its shadow documents) or `failed` (dropped).
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

    /// Whether a candidate of `key` is building (it will replace its documents).
    pub(super) fn is_building(&self, key: &ProjectionKey) -> bool {
        self.lock()
            .by_key
            .get(key)
            .is_some_and(|c| c.failed.is_none())
    }

    /// The candidate `id` of `key` if it is still building.
    fn building(&self, key: &ProjectionKey, id: u64) -> Option<Candidate> {
        let inner = self.lock();
        let c = inner.by_key.get(key)?;
        (c.id == id && c.failed.is_none()).then(|| c.clone())
    }
}

impl Refract {
    /// Starts a candidate of `rec`'s version running `loaded` into shadow documents, in
    /// place of any candidate before it; returns its id. The caller holds the deploy
    /// lock and the version is a projection.
    pub(super) async fn start_candidate(
        self: &Arc<Self>,
        rec: &ComponentRecord,
        loaded: Loaded,
        cause: Cause,
    ) -> Result<u64, ServiceError> {
        let key = &rec.key;
        let mut limited = loaded.clone();
        self.under_team(&rec.team, &mut limited);
        let Loaded::Projection(component) = &limited else {
            return Err(ServiceError::NotFound(format!("projection {key}")));
        };
        // The candidate before it stops and loses its tables; its entry is replaced
        // below, so the status never shows no candidate in between.
        let shadow = key.shadow();
        self.daemon.stop(&shadow).await;
        if let Err(e) = self.store.drop_projection(&shadow).await {
            self.candidates.lock().by_key.remove(key);
            return Err(e.into());
        }
        if let Err(e) = self.store.prepare_projection(&shadow).await {
            self.candidates.lock().by_key.remove(key);
            return Err(e.into());
        }
        // The candidate meets failing events as the version does (a dead-letter
        // version's rebuild must get past its poison events too).
        let policy = crate::config::Config::error_policy(self.components.get(&key.name));
        // With several nodes, the candidate runs here, under a lease of its own.
        if !self.take_lease(&shadow).await {
            self.candidates.lock().by_key.remove(key);
            return Err(ServiceError::Busy(format!(
                "cannot take the lease of {key}'s candidate; try again"
            )));
        }
        self.daemon.start_projection(shadow, component, policy);
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

    /// Stops and drops `key`'s candidate, if any, with its shadow documents. The caller
    /// holds the team's deploy lock.
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

    /// Whether a building candidate runs the code `sha256` (it is not registered
    /// until it swaps in, but its code must stay).
    pub(super) fn candidate_runs(&self, sha256: &str) -> bool {
        let inner = self.candidates.lock();
        inner
            .by_key
            .values()
            .any(|c| c.failed.is_none() && c.sha256 == sha256)
    }

    /// Whether `key` has a candidate, building or failed.
    pub(super) fn has_candidate(&self, key: &ProjectionKey) -> bool {
        self.candidates.lock().by_key.contains_key(key)
    }

    /// Drops the shadow documents a killed daemon left behind: candidates do not survive
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

    /// Whether candidate `id` of `key` has swapped in (the events it applied); an
    /// error if it failed or was replaced.
    pub(super) async fn candidate_done(
        &self,
        key: &ProjectionKey,
        id: u64,
    ) -> Result<ControlFlow<u64, String>, ServiceError> {
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
            None => Ok(ControlFlow::Break(
                self.store.progress(key).await?.events_applied,
            )),
            Some(Some((e, ..))) => Err(ServiceError::Stalled(format!(
                "the new build failed: {}",
                e.message
            ))),
            Some(None) => Ok(ControlFlow::Continue(format!(
                "{key}: the new build has not caught up"
            ))),
        }
    }
}

pub(super) fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}
