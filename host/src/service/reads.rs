//! Reads: pages of a stream, documents, and the write-model reads that include every
//! committed event (the persisted document plus the later events, through the guest).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Aggregate, Refract, ServiceError};
use crate::runtime::watchdog::{GRACE, run_watched};
use crate::runtime::{DocChange, DocInput, Event, Guest, Loaded, LoadedComponent, RuntimeError};
use crate::store::{
    MAX_AGGREGATE_EVENTS, MAX_READ_BYTES, Position, ProjectionKey, ReadBudget, RecordedEvent,
    StoreError, StreamId,
};

/// Events a stream page brings when the caller does not say.
pub const DEFAULT_STREAM_PAGE: usize = 1_000;
/// Most events one stream page brings (a larger `limit` is lowered to it).
pub const MAX_STREAM_PAGE: usize = 10_000;
/// Most events of the version's types a consistent read scans after the version's
/// position before it gives up (the version is too far behind).
pub const MAX_CONSISTENT_SCAN: usize = 100_000;
/// Events sliced and applied at a time by a consistent read.
const CONSISTENT_PAGE: usize = 1_000;
/// Most request-driven guest reads (consistent documents, aggregates) at once.
pub const GUEST_READ_PERMITS: usize = 4;
/// How long a request-driven guest read waits for a permit before it answers busy.
pub const GUEST_READ_WAIT: Duration = Duration::from_secs(3);
/// Most guest reads reading the store at once: the other reader connections stay
/// free for the agents and plain reads.
const GUEST_READ_LOADS: usize = 2;

/// The permits of request-driven guest reads: each read holds one from before its
/// store read until its guest calls end, which bounds their guest instances, their
/// memory and the reader connections they take from the agents.
pub(super) struct GuestReads {
    permits: Arc<Semaphore>,
    size: usize,
    wait: Duration,
    loads: Semaphore,
    /// Each team's own permits (its `max_concurrent_calls`): taken first and never
    /// waited for, so one team's calls cannot queue without bound nor take every
    /// shared permit's wait from the others.
    teams: super::per_team::PerTeam<Arc<Semaphore>>,
}

/// The permits a running guest read holds: its team's and a shared one.
#[derive(Debug)]
pub(super) struct ReadPermit {
    _team: OwnedSemaphorePermit,
    _shared: OwnedSemaphorePermit,
}

impl Default for GuestReads {
    fn default() -> Self {
        Self::new(GUEST_READ_PERMITS, GUEST_READ_WAIT)
    }
}

impl GuestReads {
    /// `permits` reads at once, each waiting at most `wait` for its turn.
    fn new(permits: usize, wait: Duration) -> Self {
        let size = permits.max(1);
        Self {
            permits: Arc::new(Semaphore::new(size)),
            size,
            wait,
            loads: Semaphore::new(GUEST_READ_LOADS),
            teams: Default::default(),
        }
    }

    /// One of `team`'s `cap` permits, or `Busy` at once when all are taken. Taken
    /// before anything else (even the name's lookup), so a flood of one team's
    /// reads costs the store nothing.
    fn team_permit(
        &self,
        team: &str,
        cap: usize,
        shared: bool,
        name: &str,
    ) -> Result<OwnedSemaphorePermit, ServiceError> {
        // Teams sharing the daemon never get more than half the shared permits each:
        // however one team's reads behave, another finds shared permits free.
        let most = if shared {
            (self.size / 2).max(1)
        } else {
            self.size
        };
        let cap = cap.clamp(1, most);
        let sem = self.teams.get(team, || Arc::new(Semaphore::new(cap)));
        sem.try_acquire_owned().map_err(|_| {
            ServiceError::Busy(format!(
                "team {team} already has {cap} aggregate and consistent reads running (its \
                 max_concurrent_calls): retry the read of {name} shortly"
            ))
        })
    }

    /// Runs a guest read's store read, at most [`GUEST_READ_LOADS`] at once.
    async fn load<T>(&self, read: impl Future<Output = T>) -> T {
        // Never closed; without a slot the read would run all the same.
        let _slot = self.loads.acquire().await.ok();
        read.await
    }

    /// One of the team's instance slots for a guest read of `loaded` (its
    /// instance lives under it); `Busy` if none frees up in time.
    async fn slot(
        &self,
        key: &ProjectionKey,
        loaded: &LoadedComponent,
    ) -> Result<Option<crate::runtime::Slot>, ServiceError> {
        let Some(slots) = &loaded.slots else {
            return Ok(None);
        };
        match tokio::time::timeout(self.wait, slots.acquire()).await {
            Ok(slot) => Ok(Some(slot)),
            Err(_) => Err(ServiceError::Busy(format!(
                "the team's components hold all of its {} instance slots (waited {} ms): \
                 retry {key}'s read shortly",
                slots.size(),
                self.wait.as_millis()
            ))),
        }
    }

    /// A shared permit for a guest read of `key` that holds its team's; `Busy` if
    /// none frees up in time.
    async fn acquire(
        &self,
        key: &ProjectionKey,
        team_permit: OwnedSemaphorePermit,
    ) -> Result<ReadPermit, ServiceError> {
        match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(ReadPermit {
                _team: team_permit,
                _shared: permit,
            }),
            // The semaphore is never closed; answer busy all the same.
            Ok(Err(_)) | Err(_) => Err(ServiceError::Busy(format!(
                "too many consistent and aggregate reads are running (at most {} at once; \
                 waited {} ms): retry {key}'s read shortly, or read without consistent=true",
                self.size,
                self.wait.as_millis()
            ))),
        }
    }
}

/// One page of a stream.
#[derive(Debug, Clone)]
pub struct StreamPage {
    /// The stream's version when it was read.
    pub version: u64,
    /// Its events from the requested version on, in order.
    pub events: Vec<RecordedEvent>,
    /// The `from` of the next page; `None` at the end of the stream.
    pub next: Option<u64>,
}

/// A document read with every committed event applied.
#[derive(Debug, Clone, Serialize)]
pub struct ConsistentDoc {
    /// The document's JSON.
    pub body: String,
    /// The store's last sequence when it was read: the document reflects every
    /// event up to it.
    pub position: Position,
}

impl Refract {
    /// At most `limit` events of stream `id` from version `from` on (the limit is
    /// kept between 1 and [`MAX_STREAM_PAGE`]); `StreamNotFound` if it has none.
    pub async fn read_stream_page(
        &self,
        id: &StreamId,
        from: u64,
        limit: usize,
    ) -> Result<StreamPage, ServiceError> {
        let limit = limit.clamp(1, MAX_STREAM_PAGE);
        let (version, events) = self.store.read_stream_page(id, from, limit).await?;
        if version == 0 {
            return Err(ServiceError::StreamNotFound(format!("stream {id}")));
        }
        let next = events
            .last()
            .map(|e| e.stream_version + 1)
            .filter(|&n| n <= version);
        Ok(StreamPage {
            version,
            events,
            next,
        })
    }

    /// A document's JSON from the live version of `name`, or from `version`, as
    /// persisted (it may lag behind the events).
    pub async fn get_doc(
        &self,
        name: &str,
        version: Option<u32>,
        id: &str,
    ) -> Result<String, ServiceError> {
        let key = self.resolve(name, version).await?;
        self.store
            .get_doc(&key, id)
            .await?
            .ok_or_else(|| ServiceError::DocumentNotFound(format!("document {id:?} in {key}")))
    }

    /// A document of `name` (live, or `version`) as of the store's last event: the
    /// persisted document and every later event of the version's types, read into
    /// memory in one read transaction that ends before the guest slices them to the
    /// document and applies them. `TooFarBehind` past [`MAX_CONSISTENT_SCAN`] events
    /// or [`MAX_READ_BYTES`]; `Busy` if no guest-read permit frees up in time.
    pub async fn get_doc_consistent(
        &self,
        name: &str,
        version: Option<u32>,
        id: &str,
    ) -> Result<ConsistentDoc, ServiceError> {
        let team_permit = self.team_permit(name)?;
        let key = self.resolve(name, version).await?;
        let loaded = self.projection_of(&key)?;
        let permit = self.guest_reads.acquire(&key, team_permit).await?;
        let budget = ReadBudget {
            events: MAX_CONSISTENT_SCAN,
            bytes: MAX_READ_BYTES,
        };
        let types = &loaded.descriptor.event_types;
        let read = self
            .guest_reads
            .load(self.store.doc_read(&key, id, types, budget))
            .await?;
        let Some(mut later) = read.later else {
            return Err(ServiceError::TooFarBehind(format!(
                "{key} is more than {MAX_CONSISTENT_SCAN} events or {} MiB of events behind \
                 (at {} of {}): a consistent read would bring them all into memory; read \
                 without consistent=true, or retry once it has caught up",
                MAX_READ_BYTES >> 20,
                read.position,
                read.head
            )));
        };
        // Only the events its agent would be fed.
        let feed = self.teams().access(crate::teams::team_of(&key.name)).read;
        if !feed.is_all() {
            later.retain(|e| feed.matches(&e.stream_id));
        }
        let state = if later.is_empty() {
            read.doc
        } else {
            let page_size = loaded.descriptor.page_size(CONSISTENT_PAGE);
            // Documents per page capped as the version's agent caps them.
            let configured = self.daemon.page_size();
            let slot = self.guest_reads.slot(&key, &loaded).await?;
            let (key, id, doc) = (key.to_string(), id.to_owned(), read.doc);
            let deadline = loaded.limits.call_timeout();
            // Watched: a call past its deadline answers the guest's timeout at once.
            run_watched(&key.clone(), deadline, GRACE, false, move || {
                // Held until the guest is done, even if the request goes away.
                let _permit = permit;
                let mut guest = Guest::new(&loaded, key).with_page_size(configured);
                if let Some(slot) = slot {
                    guest.admit(slot);
                }
                let mut state = doc;
                for page in crate::daemon::to_events(later).chunks(page_size) {
                    state = apply_sliced(&mut guest, page, &id, state)?;
                }
                Ok(state)
            })
            .await?
        };
        let body = state
            .ok_or_else(|| ServiceError::DocumentNotFound(format!("document {id:?} in {key}")))?;
        Ok(ConsistentDoc {
            body,
            position: read.head,
        })
    }

    /// A stream's document from projection `name` (live, or `version`) as of the
    /// stream's latest event: the persisted document plus the stream's events after
    /// the version's position, applied through the guest. Correct while the version
    /// is still catching up. Only for projections with a document per stream
    /// (`CustomDocuments` otherwise); a stream that does not exist is at version 0
    /// with no document. `TooFarBehind` past [`MAX_AGGREGATE_EVENTS`] events or
    /// [`MAX_READ_BYTES`]; `Busy` if no guest-read permit frees up in time.
    pub async fn aggregate(
        &self,
        stream: &StreamId,
        name: &str,
        version: Option<u32>,
    ) -> Result<Aggregate, ServiceError> {
        let team_permit = self.team_permit(name)?;
        let key = self.resolve(name, version).await?;
        let loaded = self.projection_of(&key)?;
        // A projection answers only for streams its team may read (it is never fed
        // the others); the refusal names nothing but what was asked.
        let team = crate::teams::team_of(&key.name);
        if !self.teams().access(team).may_feed(stream.as_str()) {
            return Err(ServiceError::Forbidden(format!(
                "team {team} may not read stream {:?} (config: [teams.{team}] read_streams)",
                stream.as_str()
            )));
        }
        if !loaded.descriptor.per_stream() {
            let n = &key.name;
            return Err(ServiceError::CustomDocuments(format!(
                "projection {n} chooses its own document ids, so a stream is not one of its \
                 documents; read GET /projections/{n}/docs/{{id}}?consistent=true"
            )));
        }
        let permit = self.guest_reads.acquire(&key, team_permit).await?;
        let budget = ReadBudget {
            events: MAX_AGGREGATE_EVENTS,
            bytes: MAX_READ_BYTES,
        };
        let types = &loaded.descriptor.event_types;
        let read = self
            .guest_reads
            .load(self.store.aggregate_read(&key, stream, types, budget))
            .await?;
        let Some(events) = read.events else {
            return Err(ServiceError::TooFarBehind(format!(
                "{key} is more than {MAX_AGGREGATE_EVENTS} or {} MiB of stream {stream}'s \
                 events behind (at {}): retry once it has caught up",
                MAX_READ_BYTES >> 20,
                read.position
            )));
        };
        if read.stream_version == 0 {
            return Ok(Aggregate {
                id: stream.as_str().to_owned(),
                version: 0,
                document: None,
            });
        }
        let document = if events.is_empty() {
            read.doc
        } else {
            let slot = self.guest_reads.slot(&key, &loaded).await?;
            let (id, doc) = (stream.as_str().to_owned(), read.doc);
            let deadline = loaded.limits.call_timeout();
            run_watched(&key.to_string(), deadline, GRACE, false, move || {
                let _permit = permit;
                let mut guest = Guest::new(&loaded, key.to_string());
                if let Some(slot) = slot {
                    guest.admit(slot);
                }
                let input = DocInput {
                    id,
                    state: doc.clone(),
                    events: (0..events.len() as u32).collect(),
                };
                let change = guest
                    .apply(&crate::daemon::to_events(events), vec![input])?
                    .pop();
                Ok(changed(change, doc))
            })
            .await?
        };
        let document = document
            .map(RawValue::from_string)
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("document of {stream}: {e}")))?;
        Ok(Aggregate {
            id: stream.as_str().to_owned(),
            version: read.stream_version,
            document,
        })
    }

    /// One of the permits of the team owning `name` (an internal name) for a
    /// request-driven guest call; `Busy` at once past its `max_concurrent_calls`.
    fn team_permit(&self, name: &str) -> Result<OwnedSemaphorePermit, ServiceError> {
        let team = crate::teams::split(name).0;
        let cap = self.teams.team(team).max_concurrent_calls;
        self.guest_reads
            .team_permit(team, cap, self.teams.shared(), name)
    }

    /// The running projection component of `key`; `ProjectionNotFound` for a
    /// subscription (it has no documents).
    fn projection_of(&self, key: &ProjectionKey) -> Result<LoadedComponent, ServiceError> {
        match self.loaded_components().get(key).cloned() {
            Some(Loaded::Projection(l)) => Ok(l),
            Some(Loaded::Subscription(_)) => Err(ServiceError::ProjectionNotFound(format!(
                "projection {key} (it is a subscription: it has no documents)"
            ))),
            None => Err(ServiceError::NotFound(format!(
                "running component for {key}"
            ))),
        }
    }
}

/// Document `id` after the events of `page` that the guest slices to it.
fn apply_sliced(
    guest: &mut Guest,
    page: &[Event],
    id: &str,
    state: Option<String>,
) -> Result<Option<String>, RuntimeError> {
    let Some(slice) = guest.slice(page)?.into_iter().find(|s| s.doc_id == id) else {
        return Ok(state);
    };
    let input = DocInput {
        id: id.to_owned(),
        state: state.clone(),
        events: slice.events,
    };
    let change = guest.apply(page, vec![input])?.pop();
    Ok(changed(change, state))
}

/// A document's JSON after `change` to `before`.
fn changed(change: Option<DocChange>, before: Option<String>) -> Option<String> {
    match change {
        Some(DocChange::Put(body)) => Some(body),
        Some(DocChange::Delete) => None,
        Some(DocChange::Keep) | None => before,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_guest_read_waits_for_a_permit_then_answers_busy() {
        let reads = GuestReads::new(1, Duration::from_millis(50));
        let key = ProjectionKey {
            name: "p".into(),
            version: 1,
        };
        let team = |t: &str| reads.team_permit(t, 5, true, "p").expect("team permit");
        let held = reads.acquire(&key, team("a")).await.expect("first permit");
        let err = reads
            .acquire(&key, team("b"))
            .await
            .expect_err("no second permit");
        assert!(matches!(err, ServiceError::Busy(_)), "{err}");
        assert!(err.to_string().contains("at most 1 at once"), "{err}");
        drop(held);
        let _again = reads.acquire(&key, team("a")).await.expect("freed");
    }

    #[tokio::test]
    async fn a_team_past_its_cap_is_refused_at_once_and_others_are_not() {
        let reads = GuestReads::new(8, Duration::from_secs(30));
        let _one = reads.team_permit("evil", 2, true, "evil.p").expect("first");
        let _two = reads
            .team_permit("evil", 2, true, "evil.p")
            .expect("second");
        let err = reads
            .team_permit("evil", 2, true, "evil.p")
            .expect_err("third");
        assert!(matches!(err, ServiceError::Busy(_)), "{err}");
        assert!(err.to_string().contains("max_concurrent_calls"), "{err}");
        let _good = reads
            .team_permit("good", 2, true, "good.p")
            .expect("another team");
        drop(_one);
        let _again = reads.team_permit("evil", 2, true, "evil.p").expect("freed");
    }
}
