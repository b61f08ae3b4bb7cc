//! The permits of request-driven guest reads: a team's own, the shared ones, the
//! store loads and the team's instance slots.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::runtime::LoadedComponent;
use crate::service::ServiceError;
use crate::store::{Later, MAX_READ_BYTES, ProjectionKey, ReadBudget, StoreError};

/// Most request-driven guest reads (consistent documents, aggregates) at once.
pub const GUEST_READ_PERMITS: usize = 4;
/// How long a request-driven guest read waits for a permit before it answers busy.
pub const GUEST_READ_WAIT: Duration = Duration::from_secs(3);
/// Most guest reads reading the store at once: the other reader connections stay
/// free for the agents and plain reads.
const GUEST_READ_LOADS: usize = 2;

/// What a guest read's store read brings along: the events of `types` after the
/// version's position, at most `events` of them and [`MAX_READ_BYTES`].
pub(super) fn later_events(types: &[String], events: usize) -> Later<'_> {
    let budget = ReadBudget {
        events,
        bytes: MAX_READ_BYTES,
    };
    Later { types, budget }
}

/// The permits of request-driven guest reads: each read holds one from before its
/// store read until its guest calls end, which bounds their guest instances, their
/// memory and the reader connections they take from the agents.
pub(in crate::service) struct GuestReads {
    permits: Arc<Semaphore>,
    size: usize,
    wait: Duration,
    loads: Semaphore,
    /// Each team's own permits (its `max_concurrent_calls`): taken first and never
    /// waited for, so one team's calls cannot queue without bound nor take every
    /// shared permit's wait from the others.
    teams: crate::service::per_team::PerTeam<Arc<Semaphore>>,
}

/// The permits a running guest read holds: its team's and a shared one.
#[derive(Debug)]
pub(in crate::service) struct ReadPermit {
    _team: OwnedSemaphorePermit,
    _shared: OwnedSemaphorePermit,
}

impl Default for GuestReads {
    fn default() -> Self {
        Self::new(GUEST_READ_PERMITS, GUEST_READ_WAIT)
    }
}

impl GuestReads {
    /// `permits` reads at once, each waiting at most `wait` for its turn.
    pub(super) fn new(permits: usize, wait: Duration) -> Self {
        let size = permits.max(1);
        Self {
            permits: Arc::new(Semaphore::new(size)),
            size,
            wait,
            loads: Semaphore::new(GUEST_READ_LOADS),
            teams: Default::default(),
        }
    }

    /// One of `team`'s `cap` permits, or `Busy` at once when all are taken. Taken
    /// before anything else (even the name's lookup), so a flood of one team's
    /// reads costs the store nothing.
    pub(super) fn team_permit(
        &self,
        team: &str,
        cap: usize,
        shared: bool,
        name: &str,
    ) -> Result<OwnedSemaphorePermit, ServiceError> {
        // Teams sharing the daemon never get more than half the shared permits each:
        // however one team's reads behave, another finds shared permits free.
        let most = if shared {
            (self.size / 2).max(1)
        } else {
            self.size
        };
        let cap = cap.clamp(1, most);
        let sem = self.teams.get(team, || Arc::new(Semaphore::new(cap)));
        sem.try_acquire_owned().map_err(|_| {
            ServiceError::Busy(format!(
                "team {team} already has {cap} aggregate and consistent reads running (its \
                 max_concurrent_calls): retry the read of {name} shortly"
            ))
        })
    }

    /// Runs a guest read's store `read` once it has a shared permit for `key` (see
    /// [`GuestReads::acquire`]), at most [`GUEST_READ_LOADS`] store reads at once.
    /// Answers the permit (held until its guest calls end) with what was read.
    pub(in crate::service) async fn read<T>(
        &self,
        key: &ProjectionKey,
        team_permit: OwnedSemaphorePermit,
        read: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<(ReadPermit, T), ServiceError> {
        let permit = self.acquire(key, team_permit).await?;
        // Never closed; without a slot the read would run all the same.
        let _slot = self.loads.acquire().await.ok();
        Ok((permit, read.await?))
    }

    /// One of the team's instance slots for a guest read of `loaded` (its
    /// instance lives under it); `Busy` if none frees up in time.
    pub(in crate::service) async fn slot(
        &self,
        key: &ProjectionKey,
        loaded: &LoadedComponent,
    ) -> Result<Option<crate::runtime::Slot>, ServiceError> {
        let Some(slots) = &loaded.slots else {
            return Ok(None);
        };
        match tokio::time::timeout(self.wait, slots.acquire()).await {
            Ok(slot) => Ok(Some(slot)),
            Err(_) => Err(ServiceError::Busy(format!(
                "the team's components hold all of its {} instance slots (waited {} ms): \
                 retry {key}'s read shortly",
                slots.size(),
                self.wait.as_millis()
            ))),
        }
    }

    /// A shared permit for a guest read of `key` that holds its team's; `Busy` if
    /// none frees up in time.
    pub(super) async fn acquire(
        &self,
        key: &ProjectionKey,
        team_permit: OwnedSemaphorePermit,
    ) -> Result<ReadPermit, ServiceError> {
        match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(ReadPermit {
                _team: team_permit,
                _shared: permit,
            }),
            // The semaphore is never closed; answer busy all the same.
            Ok(Err(_)) | Err(_) => Err(ServiceError::Busy(format!(
                "too many consistent and aggregate reads are running (at most {} at once; \
                 waited {} ms): retry {key}'s read shortly, or read without consistent=true",
                self.size,
                self.wait.as_millis()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_guest_read_waits_for_a_permit_then_answers_busy() {
        let reads = GuestReads::new(1, Duration::from_millis(50));
        let key = ProjectionKey {
            name: "p".into(),
            version: 1,
        };
        let team = |t: &str| reads.team_permit(t, 5, true, "p").expect("team permit");
        let held = reads.acquire(&key, team("a")).await.expect("first permit");
        let err = reads
            .acquire(&key, team("b"))
            .await
            .expect_err("no second permit");
        assert!(matches!(err, ServiceError::Busy(_)), "{err}");
        assert!(err.to_string().contains("at most 1 at once"), "{err}");
        drop(held);
        let _again = reads.acquire(&key, team("a")).await.expect("freed");
    }

    #[tokio::test]
    async fn a_team_past_its_cap_is_refused_at_once_and_others_are_not() {
        let reads = GuestReads::new(8, Duration::from_secs(30));
        let _one = reads.team_permit("evil", 2, true, "evil.p").expect("first");
        let _two = reads
            .team_permit("evil", 2, true, "evil.p")
            .expect("second");
        let err = reads
            .team_permit("evil", 2, true, "evil.p")
            .expect_err("third");
        assert!(matches!(err, ServiceError::Busy(_)), "{err}");
        assert!(err.to_string().contains("max_concurrent_calls"), "{err}");
        let _good = reads
            .team_permit("good", 2, true, "good.p")
            .expect("another team");
        drop(_one);
        let _again = reads.team_permit("evil", 2, true, "evil.p").expect("freed");
    }
}
