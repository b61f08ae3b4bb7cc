//! Read-your-writes: a read that waits, bounded, until a version has projected
//! every event up to a sequence (the `last_sequence` an append answered).
//!
//! The wait is woken by the version's agent each time a commit lands or its
//! position passes over events of other types (no polling while it runs here); the
//! store is asked only on a slow fallback schedule, for what the agent cannot say
//! (a pause, or a version whose agent is not running here).

use std::time::{Duration, Instant};

use super::{Aggregate, Refract, ServiceError};
use crate::store::{Position, ProjectionKey, RunStatus, StreamId};

/// How long a read waits when the caller does not say.
pub const DEFAULT_AFTER_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest wait a caller may ask for.
pub const MAX_AFTER_TIMEOUT: Duration = Duration::from_secs(60);
/// Waits one team may have in flight; more are refused at once (busy).
pub const MAX_WAITS_PER_TEAM: usize = 256;

/// First and last interval of the store fallback (it doubles in between).
const FALLBACK_FIRST: Duration = Duration::from_millis(20);
const FALLBACK_LAST: Duration = Duration::from_millis(500);

impl Refract {
    /// Waits until `key` has projected every event up to `after`, at most `timeout`;
    /// returns the position reached. `Behind` if the version is paused (at once) or
    /// the time runs out, naming the position it reached.
    pub(super) async fn wait_projected(
        &self,
        key: &ProjectionKey,
        after: Position,
        timeout: Duration,
    ) -> Result<Position, ServiceError> {
        let _wait = self.wait_permit(&key.name)?;
        let counters = self.daemon.watch_projected(key);
        let deadline = Instant::now() + timeout;
        let mut fallback = FALLBACK_FIRST;
        let mut next_look = Instant::now();
        let mut reached = 0;
        loop {
            // Registered before looking, so a commit landing meanwhile still wakes us.
            let moved = counters.moved();
            reached = reached.max(counters.projected());
            if reached >= after {
                return Ok(reached);
            }
            if Instant::now() >= next_look {
                if let Some(done) = self.looked_up(key, after, &mut reached).await? {
                    return Ok(done);
                }
                next_look = Instant::now() + fallback;
                fallback = (fallback * 2).min(FALLBACK_LAST);
            }
            let now = Instant::now();
            if now >= deadline {
                let head = self.store.head().await?;
                return Err(ServiceError::Behind {
                    message: format!(
                        "{key} has projected up to sequence {reached}, not yet {after}, \
                         after {timeout:?} (the store's head is {head})"
                    ),
                    reached,
                    paused: false,
                });
            }
            let wake = next_look.min(deadline).saturating_duration_since(now);
            tokio::select! {
                () = moved => {}
                () = tokio::time::sleep(wake) => {}
            }
        }
    }

    /// The store's side: the stored (and known) progress, or a pause. `Some` when
    /// done.
    async fn looked_up(
        &self,
        key: &ProjectionKey,
        after: Position,
        reached: &mut Position,
    ) -> Result<Option<Position>, ServiceError> {
        let p = self.store.progress(key).await?;
        *reached = (*reached)
            .max(p.position)
            .max(self.daemon.known_position(key));
        if *reached >= after {
            return Ok(Some(*reached));
        }
        if p.status == RunStatus::Paused {
            return Err(ServiceError::Behind {
                message: format!(
                    "{key} is paused at sequence {reached}: it will not reach {after} until \
                     resumed ({})",
                    p.error.unwrap_or_default()
                ),
                reached: *reached,
                paused: true,
            });
        }
        Ok(None)
    }
}

impl Refract {
    /// A document of the live version of `name` (or `version`) once that version
    /// has projected every event up to `after`, waiting at most `timeout`; with the
    /// position it reached.
    pub async fn get_doc_after(
        &self,
        name: &str,
        version: Option<u32>,
        id: &str,
        after: Position,
        timeout: Duration,
    ) -> Result<(String, Position), ServiceError> {
        let key = self.resolve(name, version).await?;
        self.projection_kind(&key)?;
        let reached = self.wait_projected(&key, after, timeout).await?;
        let body = self.store.get_doc(&key, id).await?.ok_or_else(|| {
            ServiceError::DocumentNotFound(format!("document {id:?} in {key} (after {after})"))
        })?;
        Ok((body, reached))
    }

    /// A stream's aggregate ([`Refract::aggregate`]) once the store has the
    /// sequence `wait` names (at most its timeout), or at once.
    pub async fn aggregate_after(
        &self,
        stream: &StreamId,
        name: &str,
        version: Option<u32>,
        wait: Option<(Position, Duration)>,
    ) -> Result<Aggregate, ServiceError> {
        if let Some((after, timeout)) = wait {
            let _wait = self.wait_permit(name)?;
            self.wait_head(after, timeout).await?;
        }
        self.aggregate(stream, name, version).await
    }

    /// One of the waits of the team owning `name` (an internal name); `Busy` at
    /// once past [`MAX_WAITS_PER_TEAM`].
    fn wait_permit(&self, name: &str) -> Result<tokio::sync::OwnedSemaphorePermit, ServiceError> {
        let team = crate::teams::team_of(name).to_owned();
        let permits = self.waits.get(&team, || {
            std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_WAITS_PER_TEAM))
        });
        permits.try_acquire_owned().map_err(|_| {
            ServiceError::Busy(format!(
                "team {team} has {MAX_WAITS_PER_TEAM} reads waiting with after= already; \
                 retry shortly"
            ))
        })
    }

    /// Waits until the store's head has reached `after` (a write-model read then
    /// includes it), at most `timeout`.
    async fn wait_head(&self, after: Position, timeout: Duration) -> Result<(), ServiceError> {
        let mut head = self.store.watch_head();
        // Only whether it got there: the watch's guard must not live across an await.
        let got_there = matches!(
            tokio::time::timeout(timeout, head.wait_for(|h| *h >= after)).await,
            Ok(Ok(_))
        );
        if got_there {
            return Ok(());
        }
        let reached = self.store.head().await?;
        if reached >= after {
            return Ok(());
        }
        Err(ServiceError::Behind {
            message: format!("the store's head is {reached}, not yet {after}, after {timeout:?}"),
            reached,
            paused: false,
        })
    }

    /// `ProjectionNotFound` if `key` runs here as a subscription (no documents).
    fn projection_kind(&self, key: &ProjectionKey) -> Result<(), ServiceError> {
        match self.loaded_components().get(key) {
            Some(crate::runtime::Loaded::Subscription(_)) => Err(ServiceError::ProjectionNotFound(
                format!("projection {key} (it is a subscription: it has no documents)"),
            )),
            _ => Ok(()),
        }
    }
}
