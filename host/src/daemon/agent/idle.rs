//! How an idle projection agent waits ([`Idle`], every [`IDLE_POLL`]) and passes
//! over events of other types without reading them: thousands of idle versions
//! would otherwise each read on every append.

use std::time::Duration;

use tokio::sync::watch;

use super::Agent;
use crate::retry::{Idle, Woke};
use crate::store::{PageCommit, Position};

/// How long an idle agent sleeps when no wake-up for its types comes (appends by
/// another process). Thousands of idle versions each read this often.
const IDLE_POLL: Duration = Duration::from_secs(2);
/// Polls an idle agent sleeps through while this process has appended nothing of its
/// types (it reads on the next one whatever the store says).
const READ_EVERY_POLLS: u32 = 15;

impl Agent {
    /// Notes a read that passed over events of other types only, up to `to`: the
    /// progress is stored with the next commit, or within
    /// [`PROGRESS_EVERY`](super::PROGRESS_EVERY).
    pub(super) fn passed_over(&mut self, to: Position, skipped: u64) {
        let earlier = self.pending.take().map_or(0, |p| p.skipped);
        self.pending = Some(PageCommit {
            position: to,
            skipped: earlier + skipped,
            ..Default::default()
        });
        self.position = Some(to);
    }

    /// When no event of its types was committed after its position (as this process
    /// knows), passes over everything up to `head` without a read (stored with the
    /// next commit) and says so. `head` is read before the check: an event's type is
    /// noted before the head moves past it.
    pub(super) fn pass_over_unread(&mut self, head: Position) -> bool {
        if !self.nothing_new() {
            return false;
        }
        if let Some(at) = self.position
            && head > at
        {
            self.passed_over(head, (head - at) as u64);
            self.counters.set_position(head);
        }
        true
    }

    /// Whether no event of the version's types was committed after its position
    /// (as this process knows): a wake-up then costs no read.
    fn nothing_new(&self) -> bool {
        let at = self.position.unwrap_or(0);
        self.store
            .last_of_types(&self.event_types)
            .is_some_and(|last| last <= at)
    }

    /// Waits for new events, a poll interval, a request, or shutdown.
    /// A wake-up for events of other types only is slept through (no read).
    pub(super) async fn idle(
        &mut self,
        wake: &mut watch::Receiver<Position>,
        types: Option<&tokio::sync::Notify>,
    ) {
        if *wake.borrow_and_update() > self.position.unwrap_or(0) && !self.nothing_new() {
            return;
        }
        // Woken for events of other types only: passed over at once, without a read.
        let head = *wake.borrow();
        self.pass_over_unread(head);
        let mut idle = Idle::new(IDLE_POLL);
        let mut polls = 0;
        loop {
            let woke = tokio::select! {
                woke = idle.wait(super::super::shared::woken(wake, types), &mut self.shutdown) => woke,
                request = self.control.recv() => {
                    if let Some(r) = request {
                        self.handle(r).await;
                    }
                    return;
                }
            };
            match woke {
                Woke::Woken(changed) => {
                    let head = *wake.borrow();
                    if changed.is_ok() && self.pass_over_unread(head) {
                        continue;
                    }
                }
                Woke::Polled => {
                    // Nothing of its types was appended here since: only an append
                    // by another process could be missed, so read only now and then.
                    polls += 1;
                    let head = *wake.borrow();
                    if polls < READ_EVERY_POLLS && self.pass_over_unread(head) {
                        idle.restart();
                        continue;
                    }
                }
                Woke::Stopped => {
                    // Not woken for other types' events, it passes over them now, so
                    // a version stopped (paused) idle shows where it really was.
                    let head = *wake.borrow();
                    self.pass_over_unread(head);
                }
            }
            return;
        }
    }
}
