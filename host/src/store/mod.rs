//! Storage: the event store, the projections' documents and progress, and the
//! registry of deployed components, behind traits so backends can be swapped.
//!
//! The [`Store`] trait is the only seam: [`open`] picks the backend from a
//! [`Location`] and hands back an `Arc<dyn Store>`. SQL, and the backend's own error
//! types (converted into [`StoreError`]), live in the backend modules and nowhere else.

pub(crate) mod checks;
pub mod cluster;
pub mod doc_list;
#[cfg(test)]
mod doc_list_tests;
mod heads;
pub mod inline;
mod model;
mod open;
pub mod postgres;
pub mod shadow;
pub mod sqlite;
pub mod subscription;

use std::collections::HashMap;

use async_trait::async_trait;
use tokio::sync::watch;

pub use doc_list::{DocList, DocQuery, FieldIs, ListBudget};
pub use inline::{
    InlineAppendError, InlineDocs, InlineOutcome, InlineProjector, InlineRefusal, InlineVersion,
    InlineWrites,
};
pub use model::*;
pub use open::{Location, OpenOptions, open};

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stream is not at the version the caller expected.
    #[error("stream {stream} is at version {current}, expected {expected}")]
    Conflict {
        /// The stream.
        stream: String,
        /// Its actual version.
        current: u64,
        /// What the caller expected, as text.
        expected: String,
    },
    /// An idempotency key was reused for a different stream.
    #[error("idempotency key {key:?} was already used for stream {stream}")]
    KeyReused {
        /// The key.
        key: String,
        /// The stream the key was first used with.
        stream: String,
    },
    /// The input is invalid; the message names the problem.
    #[error("{0}")]
    Invalid(String),
    /// Something named does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// An event is larger than the store accepts.
    #[error(
        "events[{index}] is {size} bytes (data and metadata); the maximum event size is {max} bytes"
    )]
    TooLarge {
        /// The event's index in its append.
        index: usize,
        /// Its size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Stored data could not be read back.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The backend failed; its own error is the source (converted in the backend's
    /// module, so no backend type crosses the seam).
    #[error("database error: {source}")]
    Backend {
        /// The backend's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// This node no longer holds the lease of the version it commits for (another
    /// node took it over, or a lifecycle change revoked it): nothing was written.
    #[error("{0}")]
    LeaseLost(String),
    /// The backend could not bring its schema up to date when it opened.
    #[error("migration failed: {source}")]
    Migrate {
        /// The backend's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Committed events counted past the head at most (the count is a bound, not a scan).
pub const UNORDERED_COUNTED: u64 = 10_001;

/// Appending and reading events.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends a batch to one stream in one transaction, checking the expected version
    /// and the idempotency key; a rejected append writes nothing.
    async fn append(&self, req: AppendRequest) -> Result<AppendResult, StoreError>;

    /// Appends as [`append`](EventStore::append) does and, in the same transaction,
    /// projects the versions `inline` names that are caught up (see [`inline`]):
    /// their documents and progress land with the events, or nothing does. A store
    /// that cannot ([`supports_inline`](EventStore::supports_inline) false) appends
    /// and defers every version to its agent.
    async fn append_inline(
        &self,
        req: AppendRequest,
        inline: &dyn InlineProjector,
    ) -> Result<(AppendResult, Vec<InlineOutcome>), InlineAppendError> {
        let result = self.append(req).await?;
        let deferred = inline.versions().iter().map(|v| InlineOutcome::Deferred {
            key: v.key.clone(),
            reason: "this store projects no version inline".into(),
        });
        Ok((result, deferred.collect()))
    }

    /// Whether [`append_inline`](EventStore::append_inline) projects inline: SQLite
    /// does; PostgreSQL numbers events only after their transaction commits, so
    /// there is no numbered event to project inside it.
    fn supports_inline(&self) -> bool {
        false
    }

    /// The stream's current version (0 if it does not exist), as appends check it:
    /// one query, no events (an emit asks this once per stream it writes).
    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError>;

    /// The stream's current version (0 if it does not exist) and its events from
    /// `from_version` on.
    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
    ) -> Result<(u64, Vec<RecordedEvent>), StoreError>;

    /// The stream's current version (0 if it does not exist) and at most `limit` of its
    /// events from `from_version` on, fewer if they pass [`MAX_STREAM_PAGE_BYTES`]
    /// (never none while there are some): one bounded page, in one read transaction.
    async fn read_stream_page(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<(u64, Vec<RecordedEvent>), StoreError>;

    /// Up to `budget.events` events after `after` whose type is in `types` (all if
    /// `None`), stopping before the event that would take the page's data and
    /// metadata past `budget.bytes` (the first event is always included, whatever
    /// its size).
    async fn read_page(
        &self,
        after: Position,
        types: Option<&[String]>,
        budget: ReadBudget,
    ) -> Result<Page, StoreError>;

    /// The events with these sequences (those that exist), in sequence order, stopping
    /// before the one that would take their data and metadata past `max_bytes` (the
    /// first always comes): the caller asks again for the rest.
    async fn read_events(
        &self,
        sequences: &[Position],
        max_bytes: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The sequence of the last committed event (0 if none).
    async fn head(&self) -> Result<Position, StoreError>;

    /// The stream and result of the append that first used `team`'s idempotency key.
    async fn idempotency_key(
        &self,
        team: &str,
        key: &str,
    ) -> Result<Option<(String, AppendResult)>, StoreError>;

    /// The position just before the first event recorded at or after `micros`
    /// (the head if there is none): where a subscription starting then starts.
    async fn position_at_time(&self, micros: i64) -> Result<Position, StoreError>;

    /// A receiver that changes whenever events are committed (carries the new head).
    fn watch_head(&self) -> watch::Receiver<Position>;

    /// What holds committed events back from every reader, if anything: on
    /// PostgreSQL, the oldest open transaction when events committed after it
    /// started wait for it to end (never on SQLite: its commits land in order).
    async fn order_held(&self) -> Result<Option<OrderHold>, StoreError> {
        Ok(None)
    }

    /// The head and, read with it, how many committed events have no place in
    /// the global order yet (at most [`UNORDERED_COUNTED`]): on PostgreSQL, those the
    /// sequencer has not numbered, which the head leaves out; never any on SQLite.
    async fn head_and_unordered(&self) -> Result<(Position, u64), StoreError> {
        Ok((self.head().await?, 0))
    }

    /// At least the sequence of the last event of any of `types` committed, as far
    /// as this process knows (`None`: it does not know; read to find out). Lets the
    /// agents of thousands of versions skip the read a wake-up would cost when none
    /// of their types was appended.
    fn last_of_types(&self, _types: &[String]) -> Option<Position> {
        None
    }

    /// A notification raised (after the head moves) each time events of any of
    /// `types` are committed by this process, for as long as it is held; `None`
    /// when the backend cannot tell types apart (watch the head instead). With it,
    /// an append wakes only the agents of its event types, not every idle version.
    fn watch_types(&self, _types: &[String]) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }
}

/// Documents and progress of projection versions.
#[async_trait]
pub trait DocumentStore: Send + Sync {
    /// Creates the projection version's (empty) document set and progress row if missing.
    async fn prepare_projection(&self, key: &ProjectionKey) -> Result<(), StoreError>;

    /// Creates the subscription version's progress row if missing (it keeps no
    /// documents, so it gets no document set).
    async fn prepare_subscription(&self, key: &ProjectionKey) -> Result<(), StoreError>;

    /// Drops the version's progress row and documents (if it has any: gone at once,
    /// their space freed in the background).
    async fn drop_projection(&self, key: &ProjectionKey) -> Result<(), StoreError>;

    /// The current JSON of the given documents; missing ones are absent from the map.
    async fn load_docs(
        &self,
        key: &ProjectionKey,
        ids: &[&str],
    ) -> Result<HashMap<String, String>, StoreError> {
        let docs = self.load_docs_within(key, ids, usize::MAX).await?;
        docs.ok_or_else(|| StoreError::Corrupt(format!("documents of {key} past usize::MAX")))
    }

    /// Like [`DocumentStore::load_docs`], but `None` (and nothing read into memory)
    /// when the documents' JSON is more than `max_bytes` together.
    async fn load_docs_within(
        &self,
        key: &ProjectionKey,
        ids: &[&str],
        max_bytes: usize,
    ) -> Result<Option<HashMap<String, String>>, StoreError>;

    /// Whether the version has any document (a rebuild starts from none).
    async fn has_docs(&self, key: &ProjectionKey) -> Result<bool, StoreError>;

    /// A consistent read of one document (`of`), in one read transaction that ends
    /// before it answers: its persisted JSON, the version's position, the store's
    /// head, the stream's version (for a stream's document), and the `later` events
    /// after the position up to the head (`None` past its budget): the version's, or
    /// for a stream's document the stream's own.
    async fn doc_read(
        &self,
        key: &ProjectionKey,
        of: DocOf<'_>,
        later: Later<'_>,
    ) -> Result<DocRead, StoreError>;

    /// One document's JSON, if it exists (none for a version without documents).
    async fn get_doc(&self, key: &ProjectionKey, id: &str) -> Result<Option<String>, StoreError>;

    /// One page of the version's documents in id order (bytes), by prefix and
    /// filter, within the query's budgets ([`doc_list`]); in one read transaction.
    async fn list_docs(&self, key: &ProjectionKey, q: &DocQuery) -> Result<DocList, StoreError>;

    /// Writes a page's document changes, dead letters and the new progress in one
    /// transaction.
    async fn commit_page(&self, key: &ProjectionKey, page: &PageCommit) -> Result<(), StoreError>;

    /// The version's persisted progress.
    async fn progress(&self, key: &ProjectionKey) -> Result<Progress, StoreError>;

    /// Records whether the version runs, and why it stopped.
    async fn set_status(
        &self,
        key: &ProjectionKey,
        status: RunStatus,
        error: Option<&str>,
    ) -> Result<(), StoreError>;
}

/// Which document a consistent read is of.
#[derive(Debug, Clone, Copy)]
pub enum DocOf<'a> {
    /// The document with this id (a read model's): every later event of the
    /// version's types may touch it.
    Id(&'a str),
    /// The document of this stream, whose id is the stream id (a write model's
    /// aggregate): only the stream's own events touch it.
    Stream(&'a StreamId),
}

/// A consistent read of one document: what was persisted and the events after it,
/// read in one snapshot.
pub struct DocRead {
    /// The document as persisted.
    pub doc: Option<String>,
    /// The version's position: the document reflects every event up to it.
    pub position: Position,
    /// The store's last sequence in this read's snapshot.
    pub head: Position,
    /// For a stream's document, the stream's version in the snapshot (0 if it does
    /// not exist); 0 for a document read by id.
    pub stream_version: u64,
    /// The events of the version's types after `position`, up to `head`, in order
    /// (only the stream's, for a stream's document); `None` if they pass the read's
    /// budget.
    pub later: Option<Vec<RecordedEvent>>,
}

/// Which deployed components a registry query returns.
#[derive(Debug, Clone, Copy)]
pub enum Components<'a> {
    /// All of them.
    All,
    /// The one version with this key.
    Key(&'a ProjectionKey),
    /// Every version of one (internal) name.
    Name(&'a str),
    /// Every component of one team.
    Team(&'a str),
    /// Every version whose code has this sha256.
    Code(&'a str),
}

/// The registry of deployed components.
#[async_trait]
pub trait Registry: Send + Sync {
    /// Records a deployed component (replacing the record of the same key).
    async fn save_component(&self, rec: &ComponentRecord) -> Result<(), StoreError>;

    /// The deployed components `which` selects, in key order.
    async fn components_where(
        &self,
        which: Components<'_>,
    ) -> Result<Vec<ComponentRecord>, StoreError>;

    /// Every deployed component, in key order (a restart, the operator's listing).
    async fn components(&self) -> Result<Vec<ComponentRecord>, StoreError> {
        self.components_where(Components::All).await
    }

    /// The record of one version, if it is registered.
    async fn component(&self, key: &ProjectionKey) -> Result<Option<ComponentRecord>, StoreError> {
        Ok(self.components_where(Components::Key(key)).await?.pop())
    }

    /// Sets the lifecycle states of several versions in one transaction (a promote
    /// makes one live and the previous live one standby at once).
    async fn set_states(&self, changes: &[(ProjectionKey, &str)]) -> Result<(), StoreError>;
}

/// Everything the daemon needs from a backend: the one seam between the host and a
/// database ([`open`] makes one).
#[async_trait]
pub trait Store:
    EventStore + DocumentStore + Registry + subscription::SubscriptionStore + shadow::ShadowStore
{
    /// Closes the backend's connections once nothing uses it any more (shutdown,
    /// after the agents stopped): what it buffered reaches the disk.
    async fn close(&self);

    /// Nodes and leases, on a backend several daemon nodes can share (none on
    /// SQLite: one process per file).
    fn cluster(&self) -> Option<&dyn cluster::ClusterStore> {
        None
    }
}

/// Bytes of event data and metadata per page unless configured otherwise.
pub const DEFAULT_PAGE_BYTES: usize = 8 << 20;

/// Largest number of events accepted in one append.
pub const MAX_EVENTS_PER_APPEND: usize = 100_000;

/// Largest event (data and metadata) accepted unless configured otherwise.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1 << 20;

/// Microseconds since the Unix epoch, now.
pub fn now_micros() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}
