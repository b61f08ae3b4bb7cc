//! The one event record: what the store records and what a guest is handed, field
//! for field the WIT `event` record. Bottom layer, like `identity`: it imports
//! nothing of the crate, so the store and the runtime both use it without knowing
//! each other, and a page read from the store goes to a guest as it is (no event is
//! converted or copied on the way).

/// One event, as recorded in the log and handed to guests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Global position in the log.
    pub sequence: i64,
    /// The stream it belongs to.
    pub stream_id: String,
    /// Its position in the stream, from 1.
    pub stream_version: u64,
    /// Its type name.
    pub event_type: String,
    /// Payload JSON text.
    pub data: String,
    /// Metadata JSON text.
    pub metadata: String,
    /// Tenant, if any.
    pub tenant: Option<String>,
    /// Microseconds since the Unix epoch when it was recorded.
    pub timestamp: i64,
}
