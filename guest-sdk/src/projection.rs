//! What a projection author implements, and the envelope events arrive in.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::types::Event;

/// A projection: folds events into JSON documents, one per id.
///
/// Implement it on a unit struct and export it with [`export_projection!`](crate::export_projection).
/// See the crate documentation for a complete example.
pub trait Projection {
    /// The events handled: a plain (externally tagged) serde enum whose variant names,
    /// after serde renames, are the event types; a variant's content is the event's data.
    type Event: DeserializeOwned;

    /// The document the events are folded into, stored as JSON.
    type Doc: Serialize + DeserializeOwned;

    /// The projection's name: lowercase letters, digits, `-` and `_`.
    const NAME: &'static str;

    /// The projection's version; a new version is deployed beside the old one.
    const VERSION: u32;

    /// How events map to documents: one per stream (the default, and the fastest: the
    /// host groups pages by stream itself), or [`Documents::Custom`] to use
    /// [`doc_ids`](Projection::doc_ids). Set `Custom` whenever you override `doc_ids`;
    /// [`testing::project`](crate::testing::project) reports it if you forget.
    const DOCUMENTS: Documents = Documents::PerStream;

    /// The most events the projection takes in one call, for example because its
    /// documents are big and a page's worth of them must fit in memory; `None` (the
    /// default) leaves the page size to the host. Hosts running WIT 1.1.0 send
    /// pages of at most this many events, and the SDK refuses larger ones with an
    /// error; exported for WIT 1.0.0 (`export_projection!(T, wit = "1.0.0")`) it is
    /// neither declared nor checked, since 1.0.0 cannot say it.
    const MAX_PAGE_SIZE: Option<u32> = None;

    /// The ids of the documents an event touches, when [`DOCUMENTS`](Projection::DOCUMENTS)
    /// is [`Documents::Custom`]; by default only its stream's.
    fn doc_ids(event: &Envelope<Self::Event>) -> Vec<String> {
        vec![event.stream_id.clone()]
    }

    /// The document an event creates when none exists yet; `None` ignores the event.
    fn create(id: &str, event: &Envelope<Self::Event>) -> Option<Self::Doc>;

    /// Folds an event into an existing document.
    fn apply(doc: &mut Self::Doc, event: &Envelope<Self::Event>);

    /// Whether the document is deleted after this event; by default never.
    fn should_delete(doc: &Self::Doc, event: &Envelope<Self::Event>) -> bool {
        let _ = (doc, event);
        false
    }
}

/// How a projection's events map to its documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Documents {
    /// One document per stream, named by the stream id.
    PerStream,
    /// The documents [`Projection::doc_ids`] names (several streams into one document,
    /// one event into several documents).
    Custom,
}

/// A decoded event with its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<E> {
    /// The decoded event: the variant named by the event type, holding its data.
    pub event: E,
    /// Global position in the store: strictly increasing, unique.
    pub sequence: u64,
    /// The stream (aggregate) the event belongs to.
    pub stream_id: String,
    /// Position of the event in its stream, starting at 1.
    pub stream_version: u64,
    /// The event's type name, as given when it was appended.
    pub event_type: String,
    /// When the event was recorded: microseconds since the Unix epoch, UTC.
    pub timestamp: i64,
    /// The tenant the event was appended for, if any.
    pub tenant: Option<String>,
    /// The event's metadata, JSON text (`{}` when none was given).
    pub metadata: String,
}

impl<E> Envelope<E> {
    /// Wraps a decoded event with the metadata of the raw event it came from.
    pub fn new(event: E, raw: Event) -> Self {
        Self {
            event,
            sequence: raw.sequence,
            stream_id: raw.stream_id,
            stream_version: raw.stream_version,
            event_type: raw.event_type,
            timestamp: raw.timestamp,
            tenant: raw.tenant,
            metadata: raw.metadata,
        }
    }

    /// Like [`Envelope::new`] for a borrowed raw event (its data is not copied).
    pub(crate) fn from_ref(event: E, raw: &Event) -> Self {
        Self {
            event,
            sequence: raw.sequence,
            stream_id: raw.stream_id.clone(),
            stream_version: raw.stream_version,
            event_type: raw.event_type.clone(),
            timestamp: raw.timestamp,
            tenant: raw.tenant.clone(),
            metadata: raw.metadata.clone(),
        }
    }

    /// Parses the metadata JSON as `T`.
    pub fn metadata_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.metadata)
    }
}
