//! What an agent does when the guest fails a page: host faults are waited out;
//! guest faults narrow the page (to the events before the one the error names, or
//! half of it), then the event that fails alone is tried `attempts` times before
//! the version pauses or dead-letters it.

use super::OnError;
use super::agent::{Agent, Next};
use super::shared::blame;
use crate::retry::{Blame, Verdict};
use crate::runtime::RuntimeError;
use crate::store::subscription::DeadLetter;
use crate::store::{PageCommit, Position};

impl Agent {
    /// After a guest failure of the page read after `position`: narrow the page,
    /// try again after a wait, or give up on its first event (pause or dead letter).
    pub(super) async fn failed(
        &mut self,
        e: RuntimeError,
        position: Position,
        page: &[crate::runtime::Event],
    ) -> Next {
        self.ahead = None;
        // The previous page's commit must land before anything else is decided: if
        // it failed, the position is unknown and the page is read again from there.
        if self.settle().await.is_err() {
            return Next::Continue;
        }
        // No commit is in flight now: what failed attempts loaded may go.
        let next = self.cache.begin_page();
        self.cache.evict_before(next);
        if blame(&e) == Blame::Host {
            // Not the guest's doing (a full instance pool, say): wait and try the
            // same page again, never narrowing, counting or pausing.
            tracing::warn!(projection = %self.key, "host fault, retrying: {e}");
            if let Verdict::Retry(wait) = self.retry.failed(Blame::Host) {
                self.pause_for(wait).await;
            }
            return Next::Continue;
        }
        self.counters.error(&e);
        let at = match &e {
            RuntimeError::Guest { event_sequence, .. } => {
                event_sequence.and_then(|s| page.iter().position(|ev| ev.sequence == s))
            }
            _ => None,
        };
        let half = (page.len() / 2).max(1);
        let narrowed = match at {
            // Every narrowing at least halves the page, so a guest that names
            // events at random costs log2(page) calls, not one per event.
            Some(i) if i > 0 => Some(i.min(half)),
            None if page.len() > 1 => Some(half),
            _ => None,
        };
        if let Some(limit) = narrowed {
            tracing::info!(
                projection = %self.key,
                events = limit,
                "narrowing a failing page: {e}"
            );
            self.limit = limit;
            return Next::Continue;
        }
        self.limit = 1;
        if let Verdict::Retry(wait) = self.retry.failed(Blame::Guest) {
            tracing::warn!(
                projection = %self.key,
                attempt = self.retry.failures(),
                "guest failed, retrying with a fresh instance: {e}"
            );
            self.pause_for(wait).await;
            return Next::Continue;
        }
        let Some(event) = page.first() else {
            return Next::Continue;
        };
        match self.policy.on_error {
            OnError::Pause => {
                self.pause(e).await;
                Next::Stop
            }
            OnError::DeadLetter => {
                tracing::warn!(
                    projection = %self.key,
                    sequence = event.sequence,
                    "dead-lettering the event after {} attempts: {e}",
                    self.retry.failures()
                );
                let commit = PageCommit {
                    position: event.sequence,
                    skipped: (event.sequence - position - 1).max(0) as u64,
                    dead_letter: Some(DeadLetter {
                        sequence: event.sequence,
                        error: e.to_string(),
                    }),
                    ..Default::default()
                };
                self.retry.succeeded();
                let _ = self.commit(commit).await;
                Next::Continue
            }
        }
    }
}
