//! One agent per subscription version: page → `handle` (with the page's effects) →
//! one transaction with the emitted events, the outbox messages and the progress.
//! A failing `handle` commits nothing; it is retried with backoff, then the version
//! pauses. A conflicting emit (someone appended first) re-handles the page.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::agent::{back_off, record_pause, skipped};
use super::effects::{EffectsEnv, PageEffects};
use crate::deploy::VersionState;
use crate::outbox::OutboxWaker;
use crate::runtime::{RuntimeError, Subscriber};
use crate::store::subscription::HandledPage;
use crate::store::{Position, ProjectionKey, RunStatus, Store, StoreError};

/// How a subscription version meets a failing `handle`.
#[derive(Debug, Clone, Copy)]
pub struct ErrorPolicy {
    /// Attempts of one page before the version pauses.
    pub attempts: u32,
}

impl Default for ErrorPolicy {
    fn default() -> Self {
        Self { attempts: 3 }
    }
}

pub(crate) struct SubscriptionAgent {
    pub key: ProjectionKey,
    pub team: String,
    pub subscriber: Arc<Mutex<Subscriber>>,
    pub event_types: Arc<[String]>,
    pub page_size: usize,
    pub shutdown: watch::Receiver<bool>,
    pub env: EffectsEnv,
    pub outbox: OutboxWaker,
    pub policy: ErrorPolicy,
    pub effects_during_catch_up: bool,
}

impl SubscriptionAgent {
    fn store(&self) -> &dyn Store {
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
        while !*self.shutdown.borrow() {
            let page = match self
                .env
                .store
                .read_page(position, Some(&self.event_types), self.page_size)
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(subscription = %self.key, "reading events failed: {e}");
                    back_off(&mut self.shutdown, &mut backoff).await;
                    continue;
                }
            };
            let skipped = skipped(position, &page);
            let Some(last) = page.events.last().map(|e| e.sequence) else {
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
            };
            let held = !self.effects_during_catch_up && last <= hold_until;
            let handled = page.events.len() as u64;
            let (effects, gathered) = PageEffects::new(self.env.clone(), held);
            let subscriber = self.subscriber.clone();
            let events = page.events;
            let result = tokio::task::spawn_blocking(move || {
                let mut s = subscriber.lock().unwrap_or_else(|p| p.into_inner());
                s.handle(&events, Box::new(effects))
            })
            .await
            .unwrap_or_else(|e| Err(RuntimeError::Host(format!("handle task: {e}"))));
            let host_error = gathered
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .host_error
                .take();
            let result = match (result, host_error) {
                (_, Some(message)) => Err(RuntimeError::Host(message)),
                (r, None) => r,
            };
            if let Err(e) = result {
                if e.fault() == crate::runtime::Fault::Guest {
                    failures += 1;
                }
                if failures >= self.policy.attempts {
                    record_pause(self.store(), &self.key, &e).await;
                    return;
                }
                tracing::warn!(subscription = %self.key, failures, "handle failed, retrying: {e}");
                back_off(&mut self.shutdown, &mut backoff).await;
                continue;
            }
            let g = std::mem::take(&mut *gathered.lock().unwrap_or_else(|p| p.into_inner()));
            let sends = g.messages.len();
            let done = HandledPage {
                emits: g.emits,
                messages: g.messages,
                position: page.scanned_to,
                handled,
                skipped,
                held: g.held,
            };
            match self
                .store()
                .commit_handled(&self.key, &self.team, &done)
                .await
            {
                Ok(_) => {
                    position = page.scanned_to;
                    failures = 0;
                    backoff = Duration::from_millis(50);
                    if sends > 0 {
                        self.outbox.wake();
                    }
                }
                // An emit's stream moved on since it was read: handle the page again.
                Err(StoreError::Conflict { .. }) if failures < 100 => {
                    failures += 1;
                    tracing::debug!(subscription = %self.key, "emit conflict, handling the page again");
                }
                Err(e) => {
                    tracing::warn!(subscription = %self.key, "commit failed, retrying: {e}");
                    back_off(&mut self.shutdown, &mut backoff).await;
                }
            }
        }
    }

    /// The stored position, and up to where side effects are held: the furthest
    /// position another running version of the name has reached.
    async fn start(&mut self) -> Result<(Position, Position), StoreError> {
        let progress = self.store().progress(&self.key).await?;
        if progress.status != RunStatus::Running {
            self.store()
                .set_status(&self.key, RunStatus::Running, None)
                .await?;
        }
        let mut hold_until = 0;
        for c in self.store().components().await? {
            let other = c.key.name == self.key.name && c.key != self.key;
            if other && VersionState::parse(&c.state) != VersionState::Retired {
                hold_until = hold_until.max(self.store().progress(&c.key).await?.position);
            }
        }
        tracing::info!(
            subscription = %self.key,
            position = progress.position,
            hold_until,
            "subscription agent started"
        );
        Ok((progress.position, hold_until))
    }

    async fn idle(&mut self, wake: &mut watch::Receiver<Position>, position: Position) {
        if *wake.borrow_and_update() > position {
            return;
        }
        tokio::select! {
            _ = wake.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = self.shutdown.changed() => {}
        }
    }
}
