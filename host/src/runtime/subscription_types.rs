//! The runtime's own view of what subscriptions say and ask for: the latest WIT
//! version's shapes (older versions convert into them), and the trait by which the
//! daemon answers a subscription's imports during one `handle` call. Bottom layer:
//! imports only the crate's `event`, the runtime's `types`, and the identity rules'
//! one `ExpectedVersion`.

use super::types::WitVersion;
use crate::event::Event;
use crate::identity::ExpectedVersion;

/// Where a subscription starts when first deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StartPosition {
    /// From the first event.
    Beginning,
    /// After the last event at deploy time.
    Now,
    /// After this sequence.
    AfterSequence(i64),
    /// From the first event recorded at or after this time (µs since the epoch).
    AtTime(i64),
}

/// What a subscription says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionDescriptor {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: u32,
    /// The event types it handles.
    pub event_types: Vec<String>,
    /// Where it starts.
    pub start: StartPosition,
    /// Whether it wants its side effects while a new version catches up.
    pub effects_during_catch_up: bool,
    /// The most events it takes per `handle` call (1.1.0's settings), if it says.
    pub max_page_size: Option<u32>,
    /// The WIT version it was built against.
    pub wit_version: WitVersion,
}

impl SubscriptionDescriptor {
    /// Events per page for it: `configured`, or its smaller maximum (at least 1).
    pub fn page_size(&self, configured: usize) -> usize {
        let max = self.max_page_size.map_or(usize::MAX, |m| m as usize);
        configured.min(max).max(1)
    }
}

/// One event a subscription emits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmittedEvent {
    /// Its type.
    pub event_type: String,
    /// Its data, JSON text.
    pub data: String,
    /// Its metadata, JSON text, if given.
    pub metadata: Option<String>,
}

/// One `emit` call: events for one stream, at the version the guest expects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emit {
    /// The stream appended to.
    pub stream: String,
    /// The version the guest expects the stream at.
    pub expected: ExpectedVersion,
    /// The events, in order.
    pub events: Vec<EmittedEvent>,
    /// Its idempotency key, if any: an emit made before is not made again.
    pub idempotency_key: Option<String>,
}

/// The host side of a subscription's imports for one `handle` call; the error
/// strings go back to the guest.
pub trait SubscriberHost: Send {
    /// Appends events as part of the page; returns the stream's new version.
    fn emit(&mut self, emit: Emit) -> Result<u64, String>;

    /// The stream's version and events, this page's emits included (refused past
    /// the host's cap on a whole-stream read).
    fn read_stream(&mut self, stream: String) -> Result<(u64, Vec<Event>), String>;

    /// The stream's version and at most `limit` of its events from `from_version`
    /// on, this page's emits included.
    fn read_stream_page(
        &mut self,
        stream: String,
        from_version: u64,
        limit: u32,
    ) -> Result<(u64, Vec<Event>), String>;

    /// Queues a message for the outbox.
    fn send(&mut self, url: String, body: String, key: String) -> Result<(), String>;

    /// A setting of this component from the daemon's config.
    fn setting(&mut self, key: String) -> Option<String>;
}
