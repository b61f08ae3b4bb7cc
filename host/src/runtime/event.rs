//! The runtime's own event: what a guest is handed, field for field the WIT `event`
//! record. Bottom layer: imports nothing of the runtime. The daemon, which joins the
//! store and the runtime, converts the store's records into these by moving their
//! fields (no event data is copied).

/// One event, as the runtime hands it to a guest.
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
