//! One rule for trying again, used by both agent kinds and the outbox: how many
//! attempts a piece of work gets, how long to wait before each retry, and whose
//! failure counts. Only the guest's failures (its error, a trap, a receiver that
//! does not answer) count against its attempts; the host's (a store error, a full
//! instance pool) are waited out for as long as they last. Each user brings its own
//! numbers; [`Idle`] is the matching rule for waiting when there is nothing to do.

mod idle;

use std::time::Duration;

use tokio::sync::watch;

pub use idle::{Idle, Woke};

/// A backoff schedule: the first wait, doubled after each one up to a cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait before the first retry.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Backoff {
    /// A schedule from `first`, doubling up to `max`.
    pub const fn new(first: Duration, max: Duration) -> Self {
        Self { first, max }
    }

    /// The wait after `step` earlier waits: `first * 2^step`, at most `max`.
    pub fn delay(&self, step: u32) -> Duration {
        2u32.checked_pow(step)
            .and_then(|factor| self.first.checked_mul(factor))
            .map_or(self.max, |wait| wait.min(self.max))
    }
}

/// Whose failure a try was: only the guest's count against its attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The work itself failed (the guest's code, its receiver): counted.
    Guest,
    /// The host failed (its store, its resources): waited out, never counted.
    Host,
}

/// How a piece of work is retried: attempts (counting only the guest's failures)
/// and the schedule of waits between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries of the guest's before giving up (the first try included).
    pub attempts: u32,
    /// The waits between tries.
    pub backoff: Backoff,
}

impl RetryPolicy {
    /// Retries of what is never the guest's failure: no attempts to count.
    pub const fn forever(backoff: Backoff) -> Self {
        Self {
            attempts: u32::MAX,
            backoff,
        }
    }

    /// After `failures` failures of the guest's, each followed by one wait: the
    /// wait before the next try, or `None` when that was the last attempt.
    pub fn retry_after(&self, failures: u32) -> Option<Duration> {
        (failures < self.attempts).then(|| self.backoff.delay(failures.saturating_sub(1)))
    }
}

/// What to do after a failed try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Try again after this wait.
    Retry(Duration),
    /// The attempts are used up.
    GiveUp,
}

/// One piece of work being retried: its failures of the guest's so far, and the
/// waits taken (every wait, the host's too, moves along the schedule).
#[derive(Debug, Clone)]
pub struct Retry {
    policy: RetryPolicy,
    failures: u32,
    waits: u32,
}

impl Retry {
    /// A piece of work not yet failed.
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            failures: 0,
            waits: 0,
        }
    }

    /// Records a failed try: a host's failure is always retried, not counted; a
    /// guest's counts, and gives up once the attempts are used.
    pub fn failed(&mut self, blame: Blame) -> Verdict {
        if blame == Blame::Guest {
            self.failures = self.failures.saturating_add(1);
            if self.failures >= self.policy.attempts {
                return Verdict::GiveUp;
            }
        }
        Verdict::Retry(self.wait())
    }

    /// The next wait of the schedule, counting nothing (a retry that is nobody's
    /// failure, or one after giving up that could not move on).
    pub fn wait(&mut self) -> Duration {
        let wait = self.policy.backoff.delay(self.waits);
        self.waits = self.waits.saturating_add(1);
        wait
    }

    /// Failures of the guest's since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The work went through (or was moved past): attempts and waits start over.
    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.waits = 0;
    }
}

/// Sleeps for `wait`, or until `shutdown` changes.
pub async fn sleep_or_stop(wait: Duration, shutdown: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = shutdown.changed() => {}
    }
}

#[cfg(test)]
mod tests;
