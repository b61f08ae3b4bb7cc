//! One agent per subscription version: page → `handle` (with the page's effects) →
//! one transaction with the emitted events, the outbox messages and the progress.
//! A failing `handle` commits nothing; it is retried with backoff, then the version
//! pauses. A conflicting emit (someone appended first) re-handles the page, with the
//! same backoff and counted against the same attempts. Effects are held (emits and
//! sends dropped) for every event at or below the hold mark (`subscription_hold.rs`)
//! and while the version is a standby.

mod failing;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::ErrorPolicy;
use super::effects::{EffectsEnv, PageEffects};
use super::shared::{BACKOFF, blame, readable, skipped};
use crate::outbox::OutboxWaker;
use crate::retry::{Blame, Idle, Retry, Verdict, Woke, sleep_or_stop};
use crate::runtime::{Event, RuntimeError, Slotted, Subscriber};
use crate::store::subscription::HandledPage;
use crate::store::{Position, ProjectionKey, ReadBudget, Store, StoreError};

/// Pages committed after a narrowing before the page grows again.
const CALM_PAGES: u32 = 8;

/// How long an idle subscription agent sleeps when no wake-up for its types comes.
const IDLE_POLL: Duration = Duration::from_millis(500);

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
        let types = self.env.store.watch_types(&self.event_types);
        // One schedule for every wait (the store's failures too); only the guest's
        // failures count against the policy's attempts.
        let mut retry = Retry::new(self.policy.retry(BACKOFF));
        // Events per page now: the page size, less after a page over its emit budget.
        let mut limit = self.page_size;
        // Pages committed since the last narrowing: the limit grows back only after
        // a run of them, or a guest whose every event emits near the budget would
        // have every other page handled twice (once too big, once narrowed).
        let mut calm = 0u32;
        while !*self.shutdown.borrow() {
            let Some(turn) = self.turns.read_unless_stopped(&self.shutdown).await else {
                break;
            };
            let read = self
                .env
                .store
                .read_page(
                    position,
                    Some(&self.event_types),
                    ReadBudget {
                        events: limit,
                        bytes: self.page_bytes,
                    },
                )
                .await;
            drop(turn);
            let mut page = match read {
                Ok(p) => readable(p, &self.env.access.read),
                Err(e) => {
                    tracing::warn!(subscription = %self.key, "reading events failed: {e}");
                    sleep_or_stop(retry.wait(), &mut self.shutdown).await;
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
                    let turn = self.turns.write().await;
                    let saved = self
                        .store()
                        .commit_handled(&self.key, &self.team, &progress)
                        .await;
                    drop(turn);
                    match saved {
                        Ok(_) => position = page.scanned_to,
                        Err(e) => tracing::warn!(subscription = %self.key, "saving progress: {e}"),
                    }
                }
                self.idle(&mut wake, types.as_deref(), position).await;
                continue;
            }
            let held = self.is_standby() || first.is_some_and(|f| f <= hold_until);
            // Shared, not copied: a failed page may still be needed by `give_up`.
            let events: Arc<[Event]> = page.events.into();
            let result = self
                .handle(events.clone(), held, page.scanned_to, skipped)
                .await;
            let failed = match result {
                Ok(done) if !self.wait_for_rate(&done).await => continue,
                Ok(done) => match self.commit(&done).await {
                    Ok(()) => {
                        position = page.scanned_to;
                        calm = calm.saturating_add(1);
                        if calm >= CALM_PAGES {
                            limit = (limit + limit / 8 + 1).min(self.page_size);
                        }
                        retry.succeeded();
                        continue;
                    }
                    Err(e) => match self.refused(e) {
                        Some(guest) => guest,
                        None => {
                            sleep_or_stop(retry.wait(), &mut self.shutdown).await;
                            continue;
                        }
                    },
                },
                Err(e) => e,
            };
            if self.over_budget.swap(false, Ordering::Relaxed) {
                limit = (events.len() / 2).max(1);
                calm = 0;
                tracing::info!(subscription = %self.key, limit, "page over its emit budget, read again smaller: {failed}");
                continue;
            }
            let blame = blame(&failed);
            if let Verdict::Retry(wait) = retry.failed(blame) {
                if blame == Blame::Host {
                    // Not the guest's doing: wait and try again, never counted, never
                    // a pause or a dead letter (even right after a give-up that stalled).
                    tracing::warn!(subscription = %self.key, "host fault, retrying: {failed}");
                } else {
                    let failures = retry.failures();
                    tracing::warn!(subscription = %self.key, failures, "page failed, retrying: {failed}");
                }
                sleep_or_stop(wait, &mut self.shutdown).await;
                continue;
            }
            match self.give_up(failed, &events, position, held).await {
                // Attempts start over only past the failing event: a page that could
                // not be got past is tried again, after a while, and given up at once.
                Some(moved_to) if moved_to > position => {
                    position = moved_to;
                    retry.succeeded();
                }
                Some(_) => sleep_or_stop(retry.wait(), &mut self.shutdown).await,
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
        let result = super::shared::watched(&self.key, self.deadline, move || {
            let mut s = subscriber.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(slot) = slot {
                s.admit(slot);
            }
            let result = s.handle(&events, Box::new(effects));
            s.release();
            result
        })
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

    /// Waits for new events (or shutdown, or [`IDLE_POLL`]).
    pub(super) async fn idle(
        &mut self,
        wake: &mut watch::Receiver<Position>,
        types: Option<&tokio::sync::Notify>,
        position: Position,
    ) {
        // A wake-up for events of other types only (as this process knows) is
        // slept through: thousands of idle versions would each read on every append.
        let nothing_new = || {
            self.env
                .store
                .last_of_types(&self.event_types)
                .is_some_and(|last| last <= position)
        };
        if *wake.borrow_and_update() > position && !nothing_new() {
            return;
        }
        let mut idle = Idle::new(IDLE_POLL);
        let mut shutdown = self.shutdown.clone();
        loop {
            match idle
                .wait(super::shared::woken(wake, types), &mut shutdown)
                .await
            {
                Woke::Woken(changed) if changed.is_ok() && nothing_new() => continue,
                _ => return,
            }
        }
    }
}
