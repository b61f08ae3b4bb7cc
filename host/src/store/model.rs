//! The store's model types: what is appended, what is recorded, what is projected.

use serde::Serialize;

use super::StoreError;

/// Global position of an event in the store (its sequence number); 0 is "before the first".
pub type Position = i64;

// The identity rules' limits and expected version, where the store's users find them.
/// An event as stored: the crate's one event record, which the runtime hands to
/// guests as it is.
pub use crate::event::Event as RecordedEvent;
pub use crate::identity::{
    ExpectedVersion, MAX_EVENT_TYPE_LEN, MAX_IDEMPOTENCY_KEY_LEN, MAX_STREAM_ID_LEN,
};

/// Most bytes of event data and metadata one page of a stream read brings (a page
/// always has at least one event, whatever its size).
pub const MAX_STREAM_PAGE_BYTES: usize = 16 << 20;
/// Most of a stream's later events an aggregate read applies.
pub const MAX_AGGREGATE_EVENTS: usize = 100_000;
/// Most bytes of event data and metadata a request-driven guest read (a consistent
/// document read, an aggregate) brings into memory.
pub const MAX_READ_BYTES: usize = 64 << 20;

/// A validated stream id: 1 to 256 bytes, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct StreamId(String);

impl StreamId {
    /// Checks and wraps a stream id.
    pub fn new(id: impl Into<String>) -> Result<Self, StoreError> {
        let id = id.into();
        crate::identity::check_stream_id(&id)?;
        Ok(Self(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A refused identity is invalid input to the store.
impl From<crate::identity::Invalid> for StoreError {
    fn from(e: crate::identity::Invalid) -> Self {
        StoreError::Invalid(e.0)
    }
}

/// An event to append: its type and JSON texts, already validated as JSON.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The event's type name.
    pub event_type: String,
    /// The payload, JSON text.
    pub data: String,
    /// Metadata, JSON text.
    pub metadata: String,
}

/// One append request: a batch for one stream.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    /// The stream appended to.
    pub stream: StreamId,
    /// The optimistic-concurrency check.
    pub expected: ExpectedVersion,
    /// A key that makes a retried append a no-op returning the first result.
    pub idempotency_key: Option<String>,
    /// The tenant the events belong to, if any.
    pub tenant: Option<String>,
    /// The team appending: its idempotency keys are its own (another team's use of
    /// the same key neither blocks nor answers it).
    pub team: String,
    /// The events, in order; never empty.
    pub events: Vec<NewEvent>,
}

/// The idempotency rule, for the store and for a page's emits alike: a key the
/// team used before replays its first append (`first`: that append's stream and
/// result) when it names the same stream, and is refused for any other. `None`:
/// the key is new, the append goes ahead.
pub fn replay<T>(
    key: &str,
    stream: &str,
    first: Option<(String, T)>,
) -> Result<Option<T>, StoreError> {
    match first {
        Some((first_stream, _)) if first_stream != stream => Err(StoreError::KeyReused {
            key: key.to_owned(),
            stream: first_stream,
        }),
        Some((_, result)) => Ok(Some(result)),
        None => Ok(None),
    }
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AppendResult {
    /// The stream's version after the append.
    pub stream_version: u64,
    /// Global sequence of the first appended event.
    pub first_sequence: Position,
    /// Global sequence of the last appended event.
    pub last_sequence: Position,
}

/// A page of events read for one consumer.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The matching events, in sequence order.
    pub events: Vec<RecordedEvent>,
    /// Every event up to here was examined: the consumer may move its position here.
    pub scanned_to: Position,
}

impl Page {
    /// A page read after `after` up to `head`: a short page (`exhausted`: neither
    /// full nor cut) examined every event up to the head; else up to its last event.
    pub(crate) fn scanned(
        events: Vec<RecordedEvent>,
        exhausted: bool,
        head: Position,
        after: Position,
    ) -> Self {
        let scanned_to = match events.last() {
            Some(last) if !exhausted => last.sequence,
            _ => head.max(after),
        };
        Page { events, scanned_to }
    }
}

/// How many of the events (sequence, size in bytes) fit in `max_bytes`, at least
/// one, and the sequence of the last that does: every backend's page cut.
pub(crate) fn page_cut(sizes: &[(i64, i64)], max_bytes: usize) -> (usize, Option<Position>) {
    let mut total = 0usize;
    let mut count = 0;
    for &(_, size) in sizes {
        total = total.saturating_add(usize::try_from(size).unwrap_or(usize::MAX));
        if count > 0 && total > max_bytes {
            break;
        }
        count += 1;
    }
    (count, sizes.get(count.wrapping_sub(1)).map(|&(seq, _)| seq))
}

/// Events per query of a budgeted read (each query is also cut by bytes).
pub(crate) const BUDGET_CHUNK: usize = 1_000;

/// One page of a scan read in a caller's transaction.
pub(crate) struct PageIn {
    /// The events, in order.
    pub events: Vec<RecordedEvent>,
    /// Every event of the scan was examined (the page was neither full nor cut).
    pub exhausted: bool,
}

/// A budgeted read in progress, the same for every backend: it says which page
/// to read next ([`Within::ask`]) and keeps what came ([`Within::took`]) until the
/// scan ends or passes the budget (more events, or more bytes of data and
/// metadata: at most one event over the bytes is read before it stops).
pub(crate) struct Within {
    budget: ReadBudget,
    events: Vec<RecordedEvent>,
    bytes: usize,
    after: Position,
}

impl Within {
    /// A read of the events after `after` within `budget`.
    pub(crate) fn new(after: Position, budget: ReadBudget) -> Self {
        Self {
            budget,
            events: Vec::new(),
            bytes: 0,
            after,
        }
    }

    /// The next page to read: after which sequence, how many events, how many bytes.
    pub(crate) fn ask(&self) -> (Position, usize, usize) {
        let want = (self.budget.events + 1 - self.events.len()).min(BUDGET_CHUNK);
        let room = self
            .budget
            .bytes
            .saturating_sub(self.bytes)
            .clamp(1, super::DEFAULT_PAGE_BYTES);
        (self.after, want, room)
    }

    /// Keeps a page; `Some` once the read is over: all the events, or `None` past
    /// the budget.
    pub(crate) fn took(&mut self, page: PageIn) -> Option<Option<Vec<RecordedEvent>>> {
        for e in page.events {
            self.bytes = self.bytes.saturating_add(e.data.len() + e.metadata.len());
            self.after = e.sequence;
            self.events.push(e);
        }
        if self.events.len() > self.budget.events || self.bytes > self.budget.bytes {
            return Some(None);
        }
        page.exhausted
            .then(|| Some(std::mem::take(&mut self.events)))
    }
}

/// Everything one projected page writes, in one transaction.
#[derive(Debug, Clone, Default)]
pub struct PageCommit {
    /// Document changes.
    pub writes: Vec<DocWrite>,
    /// The progress after the page (never moves back).
    pub position: Position,
    /// Events the guest handled.
    pub applied: u64,
    /// Events of other types passed over.
    pub skipped: u64,
    /// An event given up on (policy dead-letter), recorded with the progress.
    pub dead_letter: Option<super::subscription::DeadLetter>,
    /// Dead letters this page applied after all (a replay): removed with the writes.
    pub replayed: Vec<Position>,
    /// The document set the writer read at its start ([`Progress::doc_set`]), if
    /// known: a version dropped and prepared again since (a rebuild, a reload) has
    /// another, and the commit lands nothing.
    pub doc_set: Option<i64>,
    /// The stored position the page was projected from, when another writer may
    /// move it too (an inline version's appends): the commit lands only if the
    /// progress is still there.
    pub base: Option<Position>,
}

/// Identifies one deployed version of a projection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ProjectionKey {
    /// The projection's name.
    pub name: String,
    /// Its version.
    pub version: u32,
}

impl std::fmt::Display for ProjectionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@v{}", self.name, self.version)
    }
}

/// A change to one document, written with the page's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocWrite {
    /// Insert or replace the document's JSON.
    Put {
        /// Document id.
        id: String,
        /// New JSON body.
        body: String,
    },
    /// Delete the document.
    Delete {
        /// Document id.
        id: String,
    },
}

/// Progress of one projection version, as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Everything up to this sequence has been projected.
    pub position: Position,
    /// Events applied so far (handled types only).
    pub events_applied: u64,
    /// Events of types it does not handle, passed over.
    pub events_skipped: u64,
    /// A subscription's emits and sends dropped while it caught up.
    pub effects_held: u64,
    /// Whether the projection is running or paused.
    pub status: RunStatus,
    /// The error that paused it, if any.
    pub error: Option<String>,
    /// Which of the store's document sets holds its documents (none for a
    /// subscription); a new one each time the version is prepared again.
    #[serde(skip)]
    pub doc_set: Option<i64>,
}

/// Whether a projection version is processing events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// Processing events as they arrive.
    Running,
    /// Stopped on an error until resumed or restarted.
    Paused,
}

impl RunStatus {
    /// The stored text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Paused => "paused",
        }
    }

    /// Parses the stored text form; unknown text reads as paused, the safe side.
    pub fn parse(s: &str) -> Self {
        if s == "running" {
            Self::Running
        } else {
            Self::Paused
        }
    }
}

/// A deployed component, as the registry records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComponentRecord {
    /// Which projection version it provides.
    pub key: ProjectionKey,
    /// The team that owns it.
    pub team: String,
    /// Hex SHA-256 of the wasm bytes.
    pub sha256: String,
    /// The event types it handles.
    pub event_types: Vec<String>,
    /// Lifecycle state (`live`, ...).
    pub state: String,
    /// Microseconds since the Unix epoch when it was deployed.
    pub deployed_at: i64,
    /// Promote it to live by itself once it has caught up.
    pub auto_promote: bool,
    /// `projection` or `subscription`.
    pub kind: String,
}

/// What a document read brings along: the events of the version's types after its
/// position, as long as they fit the budget.
#[derive(Debug, Clone, Copy)]
pub struct Later<'a> {
    /// The version's event types.
    pub types: &'a [String],
    /// How many of them, at most, in events and bytes.
    pub budget: ReadBudget,
}

/// How much a read may bring into memory before it gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadBudget {
    /// Most events.
    pub events: usize,
    /// Most bytes of event data and metadata (at most one event more is read before
    /// the read stops).
    pub bytes: usize,
}

impl ReadBudget {
    /// A page of up to `events` events within [`super::DEFAULT_PAGE_BYTES`].
    pub fn page(events: usize) -> Self {
        Self {
            events,
            bytes: super::DEFAULT_PAGE_BYTES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_used_key_replays_on_its_stream_and_is_refused_on_another() {
        assert_eq!(replay::<u64>("k", "a", None).ok(), Some(None));
        assert_eq!(
            replay("k", "a", Some(("a".into(), 3u64))).ok(),
            Some(Some(3))
        );
        let e = replay("k", "b", Some(("a".into(), 3u64))).expect_err("reused");
        assert_eq!(
            e.to_string(),
            "idempotency key \"k\" was already used for stream a"
        );
    }
}

/// An open transaction holding committed events back from every reader (they are
/// ordered, and read, when it ends): who, since when, doing what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderHold {
    /// Committed events waiting for it (counted up to 10,001: "more than 10,000").
    pub events_waiting: u64,
    /// The database server's process id of the session (`pg_stat_activity.pid`):
    /// what an operator looks up (its query is not shown: teams see this).
    pub backend_pid: i32,
    /// Microseconds since the Unix epoch when its transaction started.
    pub since: i64,
    /// Its state (`idle in transaction`, `active`, ...).
    pub state: Option<String>,
}
