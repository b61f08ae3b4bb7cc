//! What both kinds of agents share: their error policy and backoff, whose fault a
//! failure is, recording a pause, counting the events a page passed over.

use std::time::Duration;

use super::PauseError;
use crate::retry::{Backoff, Blame, RetryPolicy};
use crate::runtime::{Fault, RuntimeError};
use crate::store::{Page, Position, ProjectionKey, RunStatus, Store};

/// The longest wait between an agent's tries.
pub(super) const MAX_WAIT: Duration = Duration::from_secs(5);
/// An agent's waits after the store failed (and every wait of a subscription
/// agent): from 50 ms, doubling up to [`MAX_WAIT`].
pub(super) const BACKOFF: Backoff = Backoff::new(Duration::from_millis(50), MAX_WAIT);

/// Whose failure a guest call's error is, for the retry policy: the host's only
/// when the runtime says so; anything else counts against the guest's attempts.
pub(super) fn blame(e: &RuntimeError) -> Blame {
    match e.fault() {
        Fault::Host => Blame::Host,
        Fault::Guest | Fault::Operator => Blame::Guest,
    }
}

/// How a version meets a failing page (`handle` of a subscription, `apply` of a
/// projection).
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

impl ErrorPolicy {
    /// The policy's attempts on the agent's own backoff schedule.
    pub fn retry(&self, backoff: Backoff) -> RetryPolicy {
        RetryPolicy {
            attempts: self.attempts,
            backoff,
        }
    }
}

/// Pauses a version, recording why as a [`PauseError`] for its status.
pub(crate) async fn record_pause(store: &dyn Store, key: &ProjectionKey, e: &RuntimeError) {
    let (event_sequence, message) = match e {
        RuntimeError::Guest {
            event_sequence,
            message,
            ..
        } => (*event_sequence, message.clone()),
        // A bad descriptor's text may quote the guest: clipped like its errors.
        other => (None, crate::runtime::guest_text::clip(&other.to_string())),
    };
    let error = PauseError {
        component: key.to_string(),
        event_sequence,
        message,
        fault: e.fault(),
    };
    tracing::error!(projection = %key, fault = ?error.fault, "paused: {e}");
    let text = serde_json::to_string(&error).unwrap_or_else(|_| e.to_string());
    if let Err(se) = store.set_status(key, RunStatus::Paused, Some(&text)).await {
        tracing::error!(projection = %key, "cannot record the pause: {se}");
    }
}

/// Events of other types the page passed over after `position`. SQLite sequences
/// are dense (rowids, one writer), so it is the gap less the events read.
pub(crate) fn skipped(position: Position, page: &Page) -> u64 {
    let passed = (page.scanned_to - position).max(0) as u64;
    passed.saturating_sub(page.events.len() as u64)
}

/// The page without the events of streams the team may not read: they count as
/// passed over (skipped), like events of other types.
pub(crate) fn readable(mut page: Page, streams: &crate::teams::Streams) -> Page {
    if !streams.is_all() {
        page.events.retain(|e| streams.matches(&e.stream_id));
    }
    page
}

/// One of the team's instance slots, waited for; a stop request ends the wait with
/// a host error (the page is not the guest's to fail), so a version waiting for its
/// team's slots never delays shutdown.
pub(super) async fn slot_or_stop(
    slots: &crate::runtime::InstanceSlots,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<crate::runtime::Slot, crate::runtime::RuntimeError> {
    let stopped = async move {
        if stop.wait_for(|s| *s).await.is_err() {
            // No one can ask it to stop any more: only a slot ends the wait.
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        slot = slots.acquire() => Ok(slot),
        () = stopped => Err(crate::runtime::RuntimeError::Host(
            "stopping: the page was not started".into(),
        )),
    }
}

/// Resolves when events an idle agent must read may have been committed: events of
/// its types when the store can tell (`types`), else any events (the head moved).
/// Thousands of idle versions then wake only for appends of their own types.
pub(super) async fn woken(
    head: &mut tokio::sync::watch::Receiver<crate::store::Position>,
    types: Option<&tokio::sync::Notify>,
) -> Result<(), tokio::sync::watch::error::RecvError> {
    match types {
        Some(notify) => {
            notify.notified().await;
            Ok(())
        }
        None => head.changed().await,
    }
}

/// Runs a guest call of version `key` on a blocking thread (wasmtime calls are
/// synchronous, and WASI must not block a tokio worker) under the host's watchdog:
/// a call that never comes back costs the guest its CPU `deadline`, not the agent
/// forever.
pub(super) async fn watched<R: Send + 'static>(
    key: &crate::store::ProjectionKey,
    deadline: std::time::Duration,
    f: impl FnOnce() -> Result<R, crate::runtime::RuntimeError> + Send + 'static,
) -> Result<R, crate::runtime::RuntimeError> {
    let (component, grace) = (key.to_string(), crate::runtime::watchdog::GRACE);
    crate::runtime::watchdog::run_watched(&component, deadline, grace, true, f).await
}
