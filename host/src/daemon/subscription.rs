//! One agent per subscription version: page → `handle` (with the page's effects) →
//! one transaction with the emitted events, the outbox messages and the progress.
//! A failing `handle` commits nothing; it is retried with backoff, then the version
//! pauses. A conflicting emit (someone appended first) re-handles the page, with the
//! same backoff and counted against the same attempts. Effects are held (emits and
//! sends dropped) for every event at or below the hold mark (`subscription_hold.rs`)
//! and while the version is a standby.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::effects::{EffectsEnv, PageEffects};
use super::shared::{back_off, readable, record_pause, skipped};
use crate::outbox::OutboxWaker;
use crate::runtime::{Event, RuntimeError, Subscriber};
use crate::store::subscription::{DeadLetter, HandledPage};
use crate::store::{Position, ProjectionKey, Store, StoreError};

/// How a subscription version meets a failing `handle`.
#[derive(Debug, Clone, Copy)]
pub struct ErrorPolicy {
    /// Attempts of one page (with backoff between them) before giving up.
    pub attempts: u32,
    /// What giving up means.
    pub on_error: OnError,
}

impl Default for ErrorPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            on_error: OnError::Pause,
        }
    }
}

/// What a subscription version does when a page keeps failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    /// Stop and show the error in the status (the default).
    #[default]
    Pause,
    /// Record the failing event as a dead letter and go on after it.
    DeadLetter,
}

pub(crate) struct SubscriptionAgent {
    pub key: ProjectionKey,
    pub team: String,
    pub subscriber: Arc<Mutex<Subscriber>>,
    /// The subscriber's CPU deadline per call, for the host's watchdog.
    pub deadline: std::time::Duration,
    /// The team's instance slots, waited for before each page.
    pub slots: Option<crate::runtime::InstanceSlots>,
    /// The team's turns at the store, taken for each page read and commit.
    pub turns: super::turns::StoreTurns,
    pub event_types: Arc<[String]>,
    pub page_size: usize,
    /// Bytes of event data and metadata per page (a bigger event goes alone).
    pub page_bytes: usize,
    pub shutdown: watch::Receiver<bool>,
    pub env: EffectsEnv,
    pub outbox: OutboxWaker,
    pub policy: ErrorPolicy,
    /// How far its name's other versions reached when it started: events up to
    /// there handle with effects held.
    pub others_reached: Position,
    /// Whether it is a standby now (then every page handles with effects held).
    pub standby: watch::Receiver<bool>,
    pub counters: Arc<super::counters::Counters>,
    /// Set when a page of more than one event went over its emit budget: the page
    /// is read again smaller (not the guest's failure: the host chose its size),
    /// down to one event, whose overrun is the guest's (naming the event).
    pub over_budget: std::sync::atomic::AtomicBool,
}

impl SubscriptionAgent {
    pub(super) fn store(&self) -> &dyn Store {
        self.env.store.as_ref()
    }

    /// Runs until shutdown, or until a failing page pauses the version.
    pub async fn run(mut self) {
        let (mut position, hold_until) = match self.start().await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(subscription = %self.key, "cannot start: {e}");
                return;
            }
        };
        let mut wake = self.env.store.watch_head();
        let mut backoff = Duration::from_millis(50);
        let mut failures = 0u32;
        // Events per page now: the page size, less after a page over its emit budget.
        let mut limit = self.page_size;
        while !*self.shutdown.borrow() {
            let turn = self.turns.read().await;
            let read = self
                .env
                .store
                .read_page_within(position, Some(&self.event_types), limit, self.page_bytes)
                .await;
            drop(turn);
            let mut page = match read {
                Ok(p) => readable(p, &self.env.access.read),
                Err(e) => {
                    tracing::warn!(subscription = %self.key, "reading events failed: {e}");
                    back_off(&mut self.shutdown, &mut backoff).await;
                    continue;
                }
            };
            // Held or not is decided per event: a page across the mark ends at it.
            let first = page.events.first().map(|e| e.sequence);
            if first.is_some_and(|f| f <= hold_until) && page.scanned_to > hold_until {
                page.events.retain(|e| e.sequence <= hold_until);
                page.scanned_to = hold_until;
            }
            let skipped = skipped(position, &page);
            if page.events.is_empty() {
                if page.scanned_to > position {
                    let progress = HandledPage {
                        position: page.scanned_to,
                        skipped,
                        ..HandledPage::default()
                    };
                    match self
                        .store()
                        .commit_handled(&self.key, &self.team, &progress)
                        .await
                    {
                        Ok(_) => position = page.scanned_to,
                        Err(e) => tracing::warn!(subscription = %self.key, "saving progress: {e}"),
                    }
                }
                self.idle(&mut wake, position).await;
                continue;
            }
            let held = self.is_standby() || first.is_some_and(|f| f <= hold_until);
            // Shared, not copied: a failed page may still be needed by `give_up`.
            let events: Arc<[Event]> = super::to_events(page.events).into();
            let result = self
                .handle(events.clone(), held, page.scanned_to, skipped)
                .await;
            let failed = match result {
                Ok(done) if !self.wait_for_rate(&done).await => continue,
                Ok(done) => match self.commit(&done).await {
                    Ok(()) => {
                        position = page.scanned_to;
                        // Back up slowly: a page narrowed for its emits would likely
                        // go over again at once.
                        limit = (limit + limit / 8 + 1).min(self.page_size);
                        failures = 0;
                        backoff = Duration::from_millis(50);
                        continue;
                    }
                    Err(e) => match self.refused(e) {
                        Some(guest) => guest,
                        None => {
                            back_off(&mut self.shutdown, &mut backoff).await;
                            continue;
                        }
                    },
                },
                Err(e) => e,
            };
            if self.over_budget.swap(false, Ordering::Relaxed) {
                limit = (events.len() / 2).max(1);
                tracing::info!(subscription = %self.key, limit, "page over its emit budget, read again smaller: {failed}");
                continue;
            }
            if failed.fault() == crate::runtime::Fault::Host {
                // Not the guest's doing: wait and try again, never counted, never a
                // pause or a dead letter (even right after a give-up that stalled).
                tracing::warn!(subscription = %self.key, "host fault, retrying: {failed}");
                back_off(&mut self.shutdown, &mut backoff).await;
                continue;
            }
            failures += 1;
            if failures < self.policy.attempts {
                tracing::warn!(subscription = %self.key, failures, "page failed, retrying: {failed}");
                back_off(&mut self.shutdown, &mut backoff).await;
                continue;
            }
            match self.give_up(failed, &events, position, held).await {
                // Attempts start over only past the failing event: a page that could
                // not be got past is tried again, after a while, and given up at once.
                Some(moved_to) if moved_to > position => {
                    position = moved_to;
                    failures = 0;
                    backoff = Duration::from_millis(50);
                }
                Some(_) => back_off(&mut self.shutdown, &mut backoff).await,
                None => return,
            }
        }
    }

    /// Whether the page just handled is to be read again smaller.
    fn narrowing(&self) -> bool {
        self.over_budget.load(Ordering::Relaxed)
    }

    /// Waits until the page's emits fit the team's append rate (a host condition,
    /// never the guest's failure). False when told to shut down meanwhile (the page
    /// is then not committed: it is handled again on the next start).
    async fn wait_for_rate(&mut self, page: &HandledPage) -> bool {
        let events = page.emits.iter().map(|r| r.events.len()).sum();
        let wait = self.env.rates.take_for_emits(&self.team, events);
        if wait.is_zero() {
            return true;
        }
        tracing::debug!(subscription = %self.key, events, ?wait, "emits wait for the team's appends_per_s");
        tokio::select! {
            _ = tokio::time::sleep(wait) => true,
            _ = self.shutdown.changed() => false,
        }
    }

    /// A failed commit as the page's failure: a conflicting emit (someone appended to
    /// its stream first) or an emit the store refused is the guest's, retried with
    /// fresh reads and counted against its attempts; anything else is the host's
    /// (`None`: retried with backoff, not counted).
    fn refused(&self, e: StoreError) -> Option<RuntimeError> {
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

    /// Hands `events` to the guest with fresh effects; what it gathered becomes the
    /// page to commit at `position`. A store failure during the call is the host's.
    async fn handle(
        &self,
        events: Arc<[Event]>,
        held: bool,
        position: Position,
        skipped: u64,
    ) -> Result<HandledPage, RuntimeError> {
        let handled = events.len() as u64;
        let single = (events.len() == 1).then(|| events[0].sequence);
        let (effects, gathered) = PageEffects::new(self.env.clone(), held, events.len());
        let subscriber = self.subscriber.clone();
        // The page's instance lives under one of the team's slots, waited for here,
        // and is dropped with the page: an idle version holds no instance.
        let slot = match &self.slots {
            Some(slots) => Some(super::shared::slot_or_stop(slots, self.shutdown.clone()).await?),
            None => None,
        };
        let started = std::time::Instant::now();
        let component = self.key.to_string();
        let grace = crate::runtime::watchdog::GRACE;
        let result = crate::runtime::watchdog::run_watched(
            &component,
            self.deadline,
            grace,
            true,
            move || {
                let mut s = subscriber.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(slot) = slot {
                    s.admit(slot);
                }
                let result = s.handle(&events, Box::new(effects));
                s.release();
                result
            },
        )
        .await;
        self.counters.guest_time(started.elapsed());
        let g = std::mem::take(&mut *gathered.lock().unwrap_or_else(|p| p.into_inner()));
        // A page of several events is read again smaller (see `over_budget`).
        if g.over_budget.is_some() && single.is_none() {
            self.over_budget.store(true, Ordering::Relaxed);
        }
        // Over budget is the guest's failure (named as such) even if it went on and
        // returned Ok, or failed with a text of its own.
        let result = match (result, g.over_budget) {
            (Err(e), Some(_)) if e.fault() != crate::runtime::Fault::Guest => Err(e),
            (_, Some(message)) => Err(RuntimeError::Guest {
                component: self.key.to_string(),
                // Only a page of one event knows which event emitted too much.
                event_sequence: single,
                message,
            }),
            (result, None) => result,
        };
        match &result {
            Ok(()) => self.counters.page(handled as usize),
            // A page read again smaller is not counted as the guest's error.
            Err(e) if e.fault() == crate::runtime::Fault::Guest && !self.narrowing() => {
                self.counters.error(e)
            }
            Err(_) => {}
        }
        if let Some(message) = g.host_error {
            return Err(RuntimeError::Host(message));
        }
        result?;
        Ok(HandledPage {
            emits: g.emits,
            messages: g.messages,
            position,
            handled,
            skipped,
            held: g.held,
            dead_letter: None,
        })
    }

    async fn commit(&self, page: &HandledPage) -> Result<(), StoreError> {
        let turn = self.turns.write().await;
        let committed = self
            .store()
            .commit_handled(&self.key, &self.team, page)
            .await;
        drop(turn);
        committed?;
        if !page.messages.is_empty() {
            self.outbox.wake();
        }
        Ok(())
    }

    /// The page kept failing: pause, or (policy dead-letter, with the failing event
    /// known) commit the events before it, record it as a dead letter and move past
    /// it. When the events before it fail too, naming one of them, that one is the
    /// failing event (narrowed until the events before it pass, or none are left).
    /// Returns where to go on from, or `None` when the version paused.
    async fn give_up(
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
