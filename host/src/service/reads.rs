//! Reads: pages of a stream, documents, and the write-model reads that include every
//! committed event (the persisted document plus the later events, through the guest).

use serde::Serialize;
use serde_json::value::RawValue;

use super::{Aggregate, Refract, ServiceError};
use crate::runtime::{DocChange, DocInput, Guest, Loaded, LoadedComponent, RuntimeError};
use crate::store::{
    MAX_AGGREGATE_EVENTS, Position, ProjectionKey, RecordedEvent, StoreError, StreamId,
};

/// Events a stream page brings when the caller does not say.
pub const DEFAULT_STREAM_PAGE: usize = 1_000;
/// Most events one stream page brings (a larger `limit` is lowered to it).
pub const MAX_STREAM_PAGE: usize = 10_000;
/// Most events of the version's types a consistent read scans after the version's
/// position before it gives up (the version is too far behind).
pub const MAX_CONSISTENT_SCAN: usize = 100_000;
/// Events read and sliced at a time by a consistent read.
const CONSISTENT_PAGE: usize = 1_000;

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

    /// A document of `name` (live, or `version`) as of the store's last event: in one
    /// read transaction, the persisted document and every later event of the
    /// version's types that the guest slices to it, applied through the guest.
    /// `TooFarBehind` if more than [`MAX_CONSISTENT_SCAN`] later events would have to
    /// be scanned.
    pub async fn get_doc_consistent(
        &self,
        name: &str,
        version: Option<u32>,
        id: &str,
    ) -> Result<ConsistentDoc, ServiceError> {
        let key = self.resolve(name, version).await?;
        let loaded = self.projection_of(&key)?;
        let mut read = self
            .store
            .doc_read(&key, id, &loaded.descriptor.event_types)
            .await?;
        let page_size = loaded.descriptor.page_size(CONSISTENT_PAGE);
        let mut state = read.doc.take();
        let mut guest: Option<Guest> = None;
        let mut scanned = 0usize;
        loop {
            let events = read.later.next_page(page_size).await?;
            if events.is_empty() {
                break;
            }
            scanned += events.len();
            if scanned > MAX_CONSISTENT_SCAN {
                return Err(ServiceError::TooFarBehind(format!(
                    "{key} is more than {MAX_CONSISTENT_SCAN} events behind (at {} of {}): a \
                     consistent read would scan them all; read without consistent=true, or \
                     retry once it has caught up",
                    read.position, read.head
                )));
            }
            let (loaded, key, id) = (loaded.clone(), key.to_string(), id.to_owned());
            let (g, s) = (guest.take(), state.take());
            let (g, s) = tokio::task::spawn_blocking(move || {
                let mut g = g.unwrap_or_else(|| Guest::new(&loaded, key));
                let s = apply_sliced(&mut g, &events, &id, s)?;
                Ok::<_, RuntimeError>((g, s))
            })
            .await
            .map_err(|e| RuntimeError::Host(format!("consistent read task: {e}")))??;
            guest = Some(g);
            state = s;
        }
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
    /// with no document.
    pub async fn aggregate(
        &self,
        stream: &StreamId,
        name: &str,
        version: Option<u32>,
    ) -> Result<Aggregate, ServiceError> {
        let key = self.resolve(name, version).await?;
        let loaded = self.projection_of(&key)?;
        if !loaded.descriptor.per_stream() {
            let n = &key.name;
            return Err(ServiceError::CustomDocuments(format!(
                "projection {n} chooses its own document ids, so a stream is not one of its \
                 documents; read GET /projections/{n}/docs/{{id}}?consistent=true"
            )));
        }
        let read = self
            .store
            .aggregate_read(&key, stream, &loaded.descriptor.event_types)
            .await?;
        if read.events.len() > MAX_AGGREGATE_EVENTS {
            return Err(ServiceError::TooFarBehind(format!(
                "{key} is more than {MAX_AGGREGATE_EVENTS} of stream {stream}'s events behind \
                 (at {}): retry once it has caught up",
                read.position
            )));
        }
        if read.stream_version == 0 {
            return Ok(Aggregate {
                id: stream.as_str().to_owned(),
                version: 0,
                document: None,
            });
        }
        let document = if read.events.is_empty() {
            read.doc
        } else {
            let id = stream.as_str().to_owned();
            tokio::task::spawn_blocking(move || {
                let mut guest = Guest::new(&loaded, key.to_string());
                let input = DocInput {
                    id,
                    state: read.doc.clone(),
                    events: (0..read.events.len() as u32).collect(),
                };
                let change = guest.apply(&read.events, vec![input])?.pop();
                Ok::<_, RuntimeError>(changed(change, read.doc))
            })
            .await
            .map_err(|e| RuntimeError::Host(format!("aggregate task: {e}")))??
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
    page: &[RecordedEvent],
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
