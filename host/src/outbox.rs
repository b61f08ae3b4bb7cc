//! Delivers the outbox after commit: each message is POSTed as JSON to its URL, with
//! its stable id in the `Refract-Message-Id` header, retried with backoff until a 2xx
//! answer (at least once; receivers deduplicate on the id) or the last attempt.
//!
//! The outbox cannot be turned against the host: only hosts (and ports) granted to
//! the queuing component's team are reached ([`grants`]: the policy); redirects are
//! never followed (a 3xx is a failed attempt, its `Location` logged); a granted name
//! is checked again at connect time, so it cannot lead to loopback, private or
//! link-local addresses or to refract itself ([`guard`]); bodies are capped.
//!
//! Each team's messages are delivered by a task of their own, one at a time, so a
//! team whose receiver never answers delays only its own messages (the delivery
//! worker: `deliver.rs`). At shutdown a delivery in flight is abandoned: its row
//! stays pending and is sent after restart.

mod deliver;
pub mod grants;
pub mod guard;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

pub use deliver::{client, deliver_pass, spawn};
pub use grants::{DEFAULT_MAX_OUTBOX_BYTES, Grants};

#[cfg(test)]
use {
    crate::store::subscription::OutboxMessage,
    crate::store::{Store, now_micros},
    deliver::post,
};

/// Header carrying the message's stable id.
pub const MESSAGE_ID_HEADER: &str = "refract-message-id";
/// How long one delivery may take by default (config `outbox_timeout_ms`).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The delivery worker's handle: wake it when messages were committed.
#[derive(Clone, Default)]
pub struct OutboxWaker(Arc<Notify>);

impl OutboxWaker {
    /// Tells the worker that new messages may be due.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

#[cfg(test)]
mod guard_tests;
#[cfg(test)]
mod tests;
