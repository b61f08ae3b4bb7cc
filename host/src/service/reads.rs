//! Reads: pages of a stream, documents, and the write-model reads that include every
//! committed event (the persisted document plus the later events, through the guest).

mod guest;
mod permits;

pub use guest::{ConsistentDoc, MAX_CONSISTENT_SCAN};
pub(super) use permits::GuestReads;
pub use permits::{GUEST_READ_PERMITS, GUEST_READ_WAIT};

use tokio::sync::OwnedSemaphorePermit;

use super::{Refract, ServiceError};
use crate::identity::doc_key::{show_key, split_key};
use crate::runtime::{Loaded, LoadedComponent};
use crate::store::{ProjectionKey, RecordedEvent, StreamId};

/// Events a stream page brings when the caller does not say.
pub const DEFAULT_STREAM_PAGE: usize = 1_000;
/// Most events one stream page brings (a larger `limit` is lowered to it).
pub const MAX_STREAM_PAGE: usize = 10_000;

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
        self.check_collection(&key, split_key(id).0)?;
        if self.is_live(&key) {
            let permit = self.team_permit(&key.name)?;
            return self.live_doc(key, id, permit).await;
        }
        self.store
            .get_doc(&key, id)
            .await?
            .ok_or_else(|| not_found(&key, id))
    }

    /// Refuses a named collection `key`'s version does not declare (every version
    /// has the default one), naming those it does.
    pub(super) fn check_collection(
        &self,
        key: &ProjectionKey,
        collection: Option<&str>,
    ) -> Result<(), ServiceError> {
        let Some(c) = collection else {
            return Ok(());
        };
        let declared = match self.loaded_components().get(key) {
            Some(Loaded::Projection(l)) => l.descriptor.collections.clone(),
            _ => Vec::new(),
        };
        if declared.iter().any(|d| d == c) {
            return Ok(());
        }
        Err(ServiceError::DocumentNotFound(format!(
            "collection {c:?} in {key}: it has {}",
            match declared.is_empty() {
                true => "only its default collection".to_owned(),
                false => format!("the collections {declared:?} besides its default one"),
            }
        )))
    }

    /// One of the permits of the team owning `name` (an internal name) for a
    /// request-driven guest call; `Busy` at once past its `max_concurrent_calls`.
    pub(super) fn team_permit(&self, name: &str) -> Result<OwnedSemaphorePermit, ServiceError> {
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

/// A document (`collection/id` when in a named collection) that `key` does not hold.
pub(super) fn not_found(key: &ProjectionKey, doc: &str) -> ServiceError {
    ServiceError::DocumentNotFound(format!("document {} in {key}", show_key(doc)))
}
