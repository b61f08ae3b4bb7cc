//! Instance slots: how many instances of its components a team may hold at once.
//! An instance exists only while its caller holds one of its team's slots (a page,
//! a request, a `describe`), so idle versions hold nothing, one team cannot fill the
//! shared pool, and the pool is sized to hold every team's slots at once.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use super::error::{BUSY, RuntimeError};

/// Instances a team may hold at once unless its config says otherwise.
pub const DEFAULT_TEAM_INSTANCES: usize = 64;

/// Instances kept for `describe` at deploy (shared by every team, never taken by
/// running versions, so a deploy never waits for another team's pages).
pub const DESCRIBE_SLOTS: usize = 8;

/// One team's instance slots. Cheap to clone.
#[derive(Clone, Debug)]
pub struct InstanceSlots {
    team: Arc<str>,
    permits: Arc<Semaphore>,
    size: usize,
}

/// One instance slot, held for as long as its instance lives.
#[derive(Debug)]
pub struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

impl InstanceSlots {
    /// `size` slots (at least one) for `team`.
    pub fn new(team: &str, size: usize) -> Self {
        let size = size.max(1);
        Self {
            team: team.into(),
            permits: Arc::new(Semaphore::new(size)),
            size,
        }
    }

    /// How many slots the team has.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Slots free now.
    pub fn free(&self) -> usize {
        self.permits.available_permits()
    }

    /// Waits for a slot (first come, first served within the team).
    pub async fn acquire(&self) -> Slot {
        match self.permits.clone().acquire_owned().await {
            Ok(p) => Slot(p),
            // The semaphore is never closed; a closed one would mean no budget.
            Err(_) => unreachable_closed(),
        }
    }

    /// A slot if one is free now.
    pub(crate) fn try_acquire(&self) -> Result<Slot, RuntimeError> {
        match self.permits.clone().try_acquire_owned() {
            Ok(p) => Ok(Slot(p)),
            Err(TryAcquireError::NoPermits | TryAcquireError::Closed) => {
                Err(RuntimeError::Host(format!(
                    "{BUSY}: team {} holds all of its {} instance slots (max_instances)",
                    self.team, self.size
                )))
            }
        }
    }
}

fn unreachable_closed() -> ! {
    panic!("instance slots are never closed")
}

/// The daemon-wide slots of `describe`: a blocking counter (describe runs on a
/// blocking thread, and a holder never waits on anything else).
#[derive(Debug)]
pub(crate) struct DescribeSlots {
    free: Mutex<usize>,
    freed: Condvar,
}

impl DescribeSlots {
    pub fn new(size: usize) -> Self {
        Self {
            free: Mutex::new(size.max(1)),
            freed: Condvar::new(),
        }
    }

    /// Runs `f` holding a describe slot; an instance the pool cannot give right now
    /// (a host condition) is waited for and tried again, up to `patience`.
    pub fn run<T>(
        &self,
        patience: Duration,
        mut f: impl FnMut() -> Result<T, RuntimeError>,
    ) -> Result<T, RuntimeError> {
        {
            let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
            while *free == 0 {
                free = self.freed.wait(free).unwrap_or_else(|p| p.into_inner());
            }
            *free -= 1;
        }
        let started = std::time::Instant::now();
        let result = loop {
            match f() {
                Err(e) if e.is_busy() && started.elapsed() < patience => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => break other,
            }
        };
        *self.free.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.freed.notify_one();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_team_holds_at_most_its_slots_and_a_freed_one_goes_to_the_next() {
        let slots = InstanceSlots::new("ops", 2);
        let a = slots.acquire().await;
        let _b = slots.acquire().await;
        let err = slots.try_acquire().expect_err("a third slot");
        assert!(err.is_busy(), "{err}");
        assert!(err.to_string().contains("team ops"), "{err}");
        let waiting = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "waits while both are held");
        drop(a);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the freed slot goes to the waiter")
            .expect("join");
    }
}
