//! Waiting with nothing to do: until a wake-up (new work announced in this
//! process), the poll interval (work another process may have made), or shutdown,
//! whichever comes first. Each user keeps its own interval.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// What ended an idle wait.
#[derive(Debug)]
pub enum Woke<W> {
    /// The wake-up came, with what its future gave.
    Woken(W),
    /// The poll interval passed first.
    Polled,
    /// Shutdown was asked for (or can no longer be).
    Stopped,
}

/// An idle wait with a poll interval that runs across wake-ups: a wake-up the
/// caller sleeps through does not put the next poll off.
#[derive(Debug)]
pub struct Idle {
    poll: Duration,
    due: Instant,
}

impl Idle {
    /// An idle wait whose first poll is one `poll` interval from now.
    pub fn new(poll: Duration) -> Self {
        Self {
            poll,
            due: Instant::now() + poll,
        }
    }

    /// Starts the poll interval over from now.
    pub fn restart(&mut self) {
        self.due = Instant::now() + self.poll;
    }

    /// Waits for `woken`, the poll interval or a change of `shutdown`, whichever
    /// first. Cancel-safe: the poll interval is kept when the wait is dropped.
    pub async fn wait<W>(
        &mut self,
        woken: impl Future<Output = W>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Woke<W> {
        tokio::select! {
            w = woken => Woke::Woken(w),
            _ = tokio::time::sleep_until(self.due) => Woke::Polled,
            _ = shutdown.changed() => Woke::Stopped,
        }
    }
}
