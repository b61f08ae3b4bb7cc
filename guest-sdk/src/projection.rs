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
    /// host groups pages by stream itself), [`Documents::Custom`] to route them with
    /// [`doc_id`](Projection::doc_id) or [`doc_ids`](Projection::doc_ids), or
    /// [`Documents::PerTenant`] for one document per tenant. Set `Custom` whenever
    /// you override either; [`testing::project`](crate::testing::project) reports it
    /// if you forget.
    const DOCUMENTS: Documents = Documents::PerStream;

    /// The most events the projection takes in one call, for example because its
    /// documents are big and a page's worth of them must fit in memory; `None` (the
    /// default) leaves the page size to the host. Hosts running WIT 1.1.0 send
    /// pages of at most this many events, and the SDK refuses larger ones with an
    /// error; exported for WIT 1.0.0 (`export_projection!(T, wit = "1.0.0")`) it is
    /// neither declared nor checked, since 1.0.0 cannot say it.
    const MAX_PAGE_SIZE: Option<u32> = None;

    /// When its documents are made: by the daemon in the background (the default),
    /// [`Lifecycle::Live`]: from the stream's events on every read, nothing stored
    /// (a write model always read fresh; its documents must be its streams), or
    /// [`Lifecycle::Inline`]: in the transaction of each of its team's appends.
    /// The daemon's config may override it.
    const LIFECYCLE: Lifecycle = Lifecycle::Async;

    /// Identity: the one document an event touches, with [`Documents::Custom`] (by
    /// default its stream's). Override [`doc_ids`](Projection::doc_ids) instead when
    /// an event touches several documents, or none.
    fn doc_id(event: &Envelope<Self::Event>) -> String {
        event.stream_id.clone()
    }

    /// Identities: the ids of the documents an event touches, with
    /// [`Documents::Custom`] (by default the one [`doc_id`](Projection::doc_id)
    /// names). An id listed twice counts once; none leaves the event out.
    fn doc_ids(event: &Envelope<Self::Event>) -> Vec<String> {
        vec![Self::doc_id(event)]
    }

    /// The named collections the projection writes besides its default one (WIT
    /// 1.2.0): each its own id space (the word `dictionary` and the `dictionary`
    /// document never meet), read as `/projections/{name}/docs/{collection}/{id}`.
    /// At most 16, each 1 to 64 of `a-z`, `0-9`, `-`, `_`. Name documents in them
    /// with [`doc_refs`](Projection::doc_refs).
    const COLLECTIONS: &'static [&'static str] = &[];

    /// Whether its routing ([`doc_refs`](Projection::doc_refs) and the rest) reads
    /// its own documents with [`lookup`](crate::lookup::lookup) (custom grouping:
    /// a `UserRenamed` to every group the user's document lists). The daemon then
    /// lands each page before it routes the next (a lookup sees every page before,
    /// not the events of its own page). WIT 1.2.0.
    const LOOKUPS: bool = false;

    /// Identities in collections: the documents an event touches, each in the
    /// default collection ([`DocRef::new`]) or a named one
    /// ([`DocRef::in_collection`]), with [`Documents::Custom`]. By default those
    /// [`doc_ids`](Projection::doc_ids) names, in the default collection.
    fn doc_refs(event: &Envelope<Self::Event>) -> Vec<DocRef> {
        Self::doc_ids(event).into_iter().map(DocRef::new).collect()
    }

    /// Fan-out: the child events an event stands for (a `Travel`'s movements and
    /// stops), each routed by [`doc_ids`](Projection::doc_ids) and folded as an event
    /// of its own, with its parent's envelope (sequence, stream, tenant, ...), right
    /// after its parent. Mark the child variants `#[serde(skip)]` so they are not
    /// event types of their own; by default an event has no children.
    fn fan_out(event: &Envelope<Self::Event>) -> Vec<Self::Event> {
        let _ = event;
        Vec::new()
    }

    /// The document an event creates when none exists yet; `None` ignores the event.
    fn create(id: &str, event: &Envelope<Self::Event>) -> Option<Self::Doc>;

    /// The document an event creates in its collection when none exists yet (by
    /// default [`create`](Projection::create) with its id, whatever the
    /// collection): override it when collections hold documents of different kinds.
    fn create_in(doc: &DocRef, event: &Envelope<Self::Event>) -> Option<Self::Doc> {
        Self::create(&doc.id, event)
    }

    /// Folds an event into an existing document.
    fn apply(doc: &mut Self::Doc, event: &Envelope<Self::Event>);

    /// Whether the document is deleted after this event; by default never.
    fn should_delete(doc: &Self::Doc, event: &Envelope<Self::Event>) -> bool {
        let _ = (doc, event);
        false
    }
}

/// A document's name: its collection (none: the projection's default one) and its
/// id there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocRef {
    /// The named collection, or `None` for the default one.
    pub collection: Option<String>,
    /// The document's id within its collection.
    pub id: String,
}

impl DocRef {
    /// Document `id` in the default collection.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            collection: None,
            id: id.into(),
        }
    }

    /// Document `id` in `collection` (one of [`Projection::COLLECTIONS`]).
    pub fn in_collection(collection: &str, id: impl Into<String>) -> Self {
        Self {
            collection: Some(collection.to_owned()),
            id: id.into(),
        }
    }

    /// The collection's name, if not the default one.
    pub fn collection(&self) -> Option<&str> {
        self.collection.as_deref()
    }
}

impl std::fmt::Display for DocRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.collection {
            Some(c) => write!(f, "{c}/{}", self.id),
            None => f.write_str(&self.id),
        }
    }
}

/// How a projection's events map to its documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Documents {
    /// One document per stream, named by the stream id.
    PerStream,
    /// The documents [`Projection::doc_ids`] names (several streams into one document,
    /// one event into several documents).
    Custom,
    /// Rollup by tenant: one document per tenant, named by the event's tenant
    /// ([`NO_TENANT`] for events appended without one).
    PerTenant,
}

/// When a projection's documents are made ([`Projection::LIFECYCLE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lifecycle {
    /// Projected by the daemon in the background and stored: reads are fast and
    /// may lag the last append (`?after=` waits for it).
    Async,
    /// Folded from the stream's events through the component on every read;
    /// nothing stored, never behind. Needs [`Documents::PerStream`].
    Live,
    /// Projected inside each of its team's appends (once caught up), so the
    /// append's answer means the documents hold its events; a guest error rejects
    /// the append. Its team's other writers still go through the daemon. Needs a
    /// daemon on SQLite.
    Inline,
}

/// The document [`Documents::PerTenant`] folds events appended without a tenant into
/// (no tenant's name can be it: they hold only letters, digits, `.`, `_` and `-`).
pub const NO_TENANT: &str = "*none*";

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

    /// A child event of this one ([`Projection::fan_out`]): its own payload, this
    /// event's envelope.
    pub fn with<C>(&self, event: C) -> Envelope<C> {
        Envelope {
            event,
            sequence: self.sequence,
            stream_id: self.stream_id.clone(),
            stream_version: self.stream_version,
            event_type: self.event_type.clone(),
            timestamp: self.timestamp,
            tenant: self.tenant.clone(),
            metadata: self.metadata.clone(),
        }
    }

    /// Parses the metadata JSON as `T`.
    pub fn metadata_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.metadata)
    }
}
