//! A candidate's watcher: it records a failure, or swaps the candidate in once it
//! and the running version are current.

use std::time::{Duration, Instant};

use super::{Candidate, SWAP_CATCH_UP, short};
use crate::daemon::PauseError;
use crate::deploy::VersionState;
use crate::runtime::Fault;
use crate::service::{Refract, ServiceError};
use crate::store::{ComponentRecord, Position, ProjectionKey, RunStatus, now_micros};

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
    /// One look of a candidate's watcher: records a failure, swaps it in once it and
    /// the running version are current. False when there is nothing left to watch.
    pub(super) async fn look_at_candidate(
        &self,
        key: &ProjectionKey,
        id: u64,
    ) -> Result<bool, ServiceError> {
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
        let _one_at_a_time = self.locks.of_name(&key.name).await;
        let Some(c) = self.candidates.building(key, id) else {
            return Ok(false);
        };
        Ok(matches!(self.swap(key, c).await?, SwapEnd::NotYet))
    }

    /// Drops a candidate whose agent paused, keeping its error for the status.
    async fn fail_candidate(&self, key: &ProjectionKey, id: u64) -> Result<(), ServiceError> {
        let _one_at_a_time = self.locks.of_name(&key.name).await;
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
        if let Some(mine) = self.candidates.lock().by_key.get_mut(key)
            && mine.id == c.id
        {
            mine.failed = Some((error, position, applied));
        }
        self.store.drop_projection(&shadow).await?;
        Ok(())
    }

    /// Stops the running version, lets the candidate reach its position and swaps it
    /// in; on anything short of a swap the running version is started again. The
    /// caller holds the team's deploy lock.
    async fn swap(&self, key: &ProjectionKey, c: Candidate) -> Result<SwapEnd, ServiceError> {
        let rec = self.store.component(key).await?;
        let Some(rec) = rec.filter(|r| VersionState::parse(&r.state) != VersionState::Retired)
        else {
            self.drop_candidate(key).await?;
            return Ok(SwapEnd::Gone);
        };
        let previous = self.loaded_components().get(key).cloned();
        let was_running = self.daemon.is_running(key);
        self.daemon.stop(key).await;
        let end = self.swap_stopped(&rec, &c).await;
        if !matches!(end, Ok(SwapEnd::Swapped))
            && was_running
            && let Some(previous) = previous
        {
            self.run(key.clone(), &rec.team, previous).await;
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
            let stuck = p.status == RunStatus::Paused || !self.daemon.is_running(&shadow);
            if stuck || started.elapsed() > SWAP_CATCH_UP {
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
        self.run(key.clone(), &rec.team, c.loaded.clone()).await;
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
