//! Read-your-writes: a read that waits, bounded, until a version has projected
//! every event up to a sequence (the `last_sequence` an append answered).
//!
//! The wait is woken by the version's agent each time a commit lands or its
//! position passes over events of other types. The store is asked once at the
//! start (the stored progress, a pause), then only while no agent of the version
//! runs here (a pause ends the agent; a reload restarts it), so waiting reads put
//! no load on the store while the version runs. A store failure during the wait is
//! a moment's: the read keeps waiting, and every store call ends by the deadline.

use std::time::{Duration, Instant};

use super::{Aggregate, Refract, ServiceError};
use crate::store::{Position, ProjectionKey, RunStatus, StreamId};

/// How long a read waits when the caller does not say.
pub const DEFAULT_AFTER_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest wait a caller may ask for.
pub const MAX_AFTER_TIMEOUT: Duration = Duration::from_secs(60);
/// Reads one team may have waiting at once unless its `max_waiting_reads` says
/// otherwise; more are refused at once (busy).
pub const DEFAULT_WAITING_READS: usize = 256;

/// How often a waiting read checks whether the version's agent still runs here
/// (in memory), and asks the store when it does not.
const LOOK_EVERY: Duration = Duration::from_millis(250);
/// The first wait between looks at the store for a version whose agent runs on
/// another node (nothing here is woken by its commits): doubled up to
/// [`LOOK_EVERY`], so a read of a write that lands soon answers soon.
const FIRST_LOOK: Duration = Duration::from_millis(10);
/// How long the store's head may take for the message of a wait that ran out.
const HEAD_FOR_MESSAGE: Duration = Duration::from_secs(1);

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
        let mut reached = 0;
        let mut looked = false;
        let mut failed: Option<String> = None;
        let mut look_every = FIRST_LOOK;
        loop {
            // Registered before looking, so a commit landing meanwhile still wakes us.
            let moved = counters.moved();
            reached = reached.max(counters.projected());
            if reached >= after {
                return Ok(reached);
            }
            if !looked || !self.daemon.is_running(key) {
                looked = true;
                let look = self.looked_up(key, after, &mut reached);
                match tokio::time::timeout_at(deadline.into(), look).await {
                    Ok(Ok(Some(done))) => return Ok(done),
                    Ok(Ok(None)) | Err(_) => {}
                    Ok(Err(e @ ServiceError::Behind { .. })) => return Err(e),
                    Ok(Err(e)) => {
                        tracing::debug!(projection = %key, "a waiting read's store look failed: {e}");
                        failed = Some(e.to_string());
                    }
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(self.ran_out(key, reached, after, timeout, failed).await);
            }
            let every = match self.daemon.is_running(key) {
                true => LOOK_EVERY,
                false => look_every,
            };
            look_every = (look_every * 2).min(LOOK_EVERY);
            let wake = deadline.min(now + every).saturating_duration_since(now);
            tokio::select! {
                () = moved => {}
                () = tokio::time::sleep(wake) => {}
            }
        }
    }

    /// The error of a wait whose time ran out: where the version stands, the
    /// store's head if it answers at once, the last store failure if any.
    async fn ran_out(
        &self,
        key: &ProjectionKey,
        reached: Position,
        after: Position,
        timeout: Duration,
        failed: Option<String>,
    ) -> ServiceError {
        let head = match tokio::time::timeout(HEAD_FOR_MESSAGE, self.store.head()).await {
            Ok(Ok(h)) => format!(" (the store's head is {h})"),
            _ => String::new(),
        };
        let failed = failed.map_or_else(String::new, |f| format!("; the store failed: {f}"));
        ServiceError::Behind {
            message: format!(
                "{key} has projected up to sequence {reached}, not yet {after}, after \
                 {timeout:?}{head}{failed}"
            ),
            reached,
            paused: false,
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
        let key = self.resolve_projection(name, version).await?;
        self.check_collection(&key, crate::identity::doc_key::split_key(id).0)?;
        if self.is_live(&key) {
            // Folded from the stream now: every committed event is in it.
            let head = self.store.head().await?;
            let permit = self.team_permit(&key.name)?;
            return Ok((self.live_doc(key, id, permit).await?, head));
        }
        let reached = self.wait_projected(&key, after, timeout).await?;
        let body = self.store.get_doc(&key, id).await?.ok_or_else(|| {
            ServiceError::DocumentNotFound(format!(
                "document {} in {key} (after {after})",
                crate::identity::doc_key::show_key(id)
            ))
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
            // The name first: only a team's own projections take its waits.
            let key = self.resolve(name, version).await?;
            let _wait = self.wait_permit(&key.name)?;
            self.wait_head(after, timeout).await?;
        }
        self.aggregate(stream, name, version).await
    }

    /// One of the waits of the team owning `name` (an internal name); `Busy` at
    /// once past its `max_waiting_reads`.
    fn wait_permit(&self, name: &str) -> Result<tokio::sync::OwnedSemaphorePermit, ServiceError> {
        let team = crate::teams::team_of(name).to_owned();
        let cap = self.teams.team(&team).max_waiting_reads.max(1);
        let permits = self.waits.get(&team, || {
            std::sync::Arc::new(tokio::sync::Semaphore::new(cap))
        });
        permits.try_acquire_owned().map_err(|_| {
            ServiceError::Busy(format!(
                "team {team} has {cap} reads waiting with after= already (its \
                 max_waiting_reads): retry shortly"
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
        let reached = tokio::time::timeout(HEAD_FOR_MESSAGE, self.store.head()).await;
        let reached = match reached {
            Ok(Ok(h)) if h >= after => return Ok(()),
            Ok(Ok(h)) => h,
            _ => *head.borrow(),
        };
        Err(ServiceError::Behind {
            message: format!("the store's head is {reached}, not yet {after}, after {timeout:?}"),
            reached,
            paused: false,
        })
    }

    /// The projection version a document read goes to; `ProjectionNotFound` for a
    /// subscription (it has no documents).
    pub(super) async fn resolve_projection(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<ProjectionKey, ServiceError> {
        let rec = self.resolve_record(name, version).await?;
        if rec.kind == "subscription" {
            return Err(ServiceError::ProjectionNotFound(format!(
                "projection {} (it is a subscription: it has no documents)",
                rec.key
            )));
        }
        Ok(rec.key)
    }
}
