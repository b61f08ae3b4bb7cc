//! Plain Rust mirrors of the WIT types of `refract:projection` (the latest version,
//! 1.1.0; the other types are the same in 1.0.0).
//!
//! The projection logic works on these on every target; the wasm export glue converts
//! between them and the types `wit-bindgen` generates for each version.

use std::fmt;

use crate::projection::Documents;

/// One recorded event, as the host hands it to a guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Global position in the store: strictly increasing, unique.
    pub sequence: u64,
    /// The stream (aggregate) the event belongs to.
    pub stream_id: String,
    /// Position of the event in its stream, starting at 1.
    pub stream_version: u64,
    /// The event's type name, as given when it was appended.
    pub event_type: String,
    /// The event's payload, JSON text.
    pub data: String,
    /// The event's metadata, JSON text (`{}` when none was given).
    pub metadata: String,
    /// The tenant the event was appended for, if any.
    pub tenant: Option<String>,
    /// When the event was recorded: microseconds since the Unix epoch, UTC.
    pub timestamp: i64,
}

/// What a component is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComponentKind {
    /// Folds events into documents (the `projector` world).
    Projection,
    /// Reacts to pages of events (a later world).
    Subscription,
}

/// What a component says about itself: its WIT `descriptor` and, from 1.1.0, its
/// `settings` (`documents`, `max_page_size`); the host asks once on load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// The projection's name: lowercase letters, digits, `-` and `_`.
    pub name: String,
    /// The projection's version; a new version is deployed beside the old one.
    pub version: u32,
    /// What kind of component this is.
    pub kind: ComponentKind,
    /// The event types the component handles; the host sends only these.
    pub event_types: Vec<String>,
    /// How the component's events map to its documents.
    pub documents: Documents,
    /// The most events the component takes in one call, if it limits them.
    pub max_page_size: Option<u32>,
    /// Free-form options (key, value); the host ignores keys it does not know.
    pub options: Vec<(String, String)>,
}

impl Descriptor {
    /// The options of this descriptor in WIT 1.0.0, which has no typed `documents`:
    /// per-stream documents are said with the option `("documents", "per-stream")`.
    /// (1.0.0 cannot say `max_page_size` at all.)
    pub fn v1_0_options(&self) -> Vec<(String, String)> {
        let mut options = self.options.clone();
        if self.documents == Documents::PerStream {
            options.push(("documents".to_owned(), "per-stream".to_owned()));
        }
        options
    }
}

/// A failure the guest reports instead of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestError {
    /// What went wrong, for a person to read.
    pub message: String,
    /// The sequence of the event being processed when it went wrong, if any.
    pub event_sequence: Option<u64>,
}

impl GuestError {
    /// An error at the event with this sequence (or at none).
    pub fn new(message: impl Into<String>, event_sequence: Option<u64>) -> Self {
        Self {
            message: message.into(),
            event_sequence,
        }
    }
}

impl fmt::Display for GuestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for GuestError {}

/// Which events of a page touch one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    /// The document's collection (WIT 1.2.0), or `None` for the default one.
    pub collection: Option<String>,
    /// The document's id.
    pub doc_id: String,
    /// Indices into the page, in page order.
    pub events: Vec<u32>,
}

/// One document to bring up to date: its current state and its new events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocEvents {
    /// The document's collection (WIT 1.2.0), or `None` for the default one.
    pub collection: Option<String>,
    /// The document's id.
    pub doc_id: String,
    /// The document's current JSON, or none if it does not exist yet.
    pub state: Option<String>,
    /// The events to apply, in order.
    pub events: Vec<Event>,
}

/// What became of one document after `apply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocChange {
    /// The document's new JSON.
    Put(String),
    /// The document is deleted.
    Delete,
    /// The document is left as it was.
    Keep,
}
