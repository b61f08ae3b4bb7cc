//! What a subscription agent does when a page keeps failing: a refused commit is
//! the guest's or the host's failure ([`SubscriptionAgent::refused`]); once the
//! attempts are used up the version pauses or (policy `dead-letter`) commits the
//! events before the failing one and records that one as a dead letter.

use std::sync::Arc;

use super::SubscriptionAgent;
use crate::daemon::OnError;
use crate::daemon::shared::record_pause;
use crate::runtime::{Event, RuntimeError};
use crate::store::subscription::{DeadLetter, HandledPage};
use crate::store::{Position, StoreError};

impl SubscriptionAgent {
    /// A failed commit as the page's failure: a conflicting emit (someone appended to
    /// its stream first) or an emit the store refused is the guest's, retried with
    /// fresh reads and counted against its attempts; anything else is the host's
    /// (`None`: retried with backoff, not counted).
    pub(super) fn refused(&self, e: StoreError) -> Option<RuntimeError> {
        let message = match e {
            StoreError::Conflict { .. } => format!("emit conflict at commit: {e}"),
            StoreError::Invalid(_) | StoreError::KeyReused { .. } => {
                format!("emit refused at commit: {e}")
            }
            other => {
                tracing::warn!(subscription = %self.key, "commit failed, retrying: {other}");
                return None;
            }
        };
        // The store's error may quote what the guest emitted: clipped.
        Some(RuntimeError::guest(self.key.to_string(), None, &message))
    }

    /// The page kept failing: pause, or (policy dead-letter, with the failing event
    /// known) commit the events before it, record it as a dead letter and move past
    /// it. When the events before it fail too, naming one of them, that one is the
    /// failing event (narrowed until the events before it pass, or none are left).
    /// Returns where to go on from, or `None` when the version paused.
    pub(super) async fn give_up(
        &mut self,
        mut e: RuntimeError,
        page: &[Event],
        position: Position,
        held: bool,
    ) -> Option<Position> {
        let mut failed_at = match (&e, self.policy.on_error) {
            (
                RuntimeError::Guest {
                    event_sequence: Some(s),
                    ..
                },
                OnError::DeadLetter,
            ) if page.iter().any(|ev| ev.sequence == *s) => *s,
            _ => {
                record_pause(self.store(), &self.key, &e).await;
                return None;
            }
        };
        let mut at = position;
        loop {
            let before: Arc<[Event]> = page
                .iter()
                .take_while(|ev| ev.sequence < failed_at)
                .cloned()
                .collect();
            if before.is_empty() {
                break;
            }
            let skipped =
                ((failed_at - 1 - position).max(0) as u64).saturating_sub(before.len() as u64);
            let done = match self.handle(before, held, failed_at - 1, skipped).await {
                Ok(done) => done,
                Err(earlier) => match earlier_failure(&earlier, page, failed_at) {
                    Some(s) => {
                        (e, failed_at) = (earlier, s);
                        continue;
                    }
                    // The host's failure: the page is tried again later.
                    None if earlier.fault() != crate::runtime::Fault::Guest => {
                        return Some(position);
                    }
                    None => {
                        record_pause(self.store(), &self.key, &earlier).await;
                        return None;
                    }
                },
            };
            match self.commit(&done).await {
                Ok(()) => at = failed_at - 1,
                Err(se) => {
                    // A conflict is tried again; an emit the store refuses never passes.
                    let conflict = matches!(se, StoreError::Conflict { .. });
                    return match self.refused(se) {
                        Some(refused) if !conflict => {
                            record_pause(self.store(), &self.key, &refused).await;
                            None
                        }
                        _ => Some(position),
                    };
                }
            }
            break;
        }
        let letter = HandledPage {
            position: failed_at,
            skipped: (failed_at - 1 - at).max(0) as u64,
            dead_letter: Some(DeadLetter {
                sequence: failed_at,
                error: e.to_string(),
            }),
            ..HandledPage::default()
        };
        match self.commit(&letter).await {
            Ok(()) => {
                tracing::error!(subscription = %self.key, sequence = failed_at, "dead-lettered: {e}");
                Some(failed_at)
            }
            Err(se) => {
                tracing::warn!(subscription = %self.key, "recording the dead letter: {se}");
                Some(at)
            }
        }
    }
}

/// The guest's failure of the events before `failed_at`, naming one of them: where
/// the page fails first.
fn earlier_failure(e: &RuntimeError, page: &[Event], failed_at: Position) -> Option<Position> {
    match e {
        RuntimeError::Guest {
            event_sequence: Some(s),
            ..
        } if *s < failed_at && page.iter().any(|ev| ev.sequence == *s) => Some(*s),
        _ => None,
    }
}
