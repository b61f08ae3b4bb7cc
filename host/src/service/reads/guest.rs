//! Write-model reads through the guest: a document as of the store's last event,
//! and a stream's document as of the stream's latest event (the persisted document
//! plus the later events, applied by the version's component).

use serde::Serialize;
use serde_json::value::RawValue;

use super::super::{Aggregate, Refract, ServiceError};
use super::permits::later_events;
use crate::runtime::watchdog::{GRACE, run_watched};
use crate::runtime::{DocChange, DocInput, Event, Guest, RuntimeError, Slotted};
use crate::store::{DocOf, MAX_AGGREGATE_EVENTS, MAX_READ_BYTES, Position, StoreError, StreamId};

/// Most events of the version's types a consistent read scans after the version's
/// position before it gives up (the version is too far behind).
pub const MAX_CONSISTENT_SCAN: usize = 100_000;
/// Events sliced and applied at a time by a consistent read.
const CONSISTENT_PAGE: usize = 1_000;

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
        self.check_collection(&key, crate::identity::doc_key::split_key(id).0)?;
        if self.is_live(&key) {
            let head = self.store.head().await?;
            let body = self.live_doc(key, id, team_permit).await?;
            return Ok(ConsistentDoc {
                body,
                position: head,
            });
        }
        let loaded = self.projection_of(&key)?;
        if loaded.descriptor.uses_lookups() {
            // Its later events would be routed by the documents as they are now.
            return Err(ServiceError::CustomDocuments(format!(
                "{key} looks its own documents up while routing: a consistent read cannot \
                 fold its later events; read with ?after=<sequence> instead"
            )));
        }
        let types = &loaded.descriptor.event_types;
        let read = self.store.doc_read(
            &key,
            DocOf::Id(id),
            later_events(types, MAX_CONSISTENT_SCAN),
        );
        let (permit, read) = self.guest_reads.read(&key, team_permit, read).await?;
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
                for page in later.chunks(page_size) {
                    state = apply_sliced(&mut guest, page, &id, state)?;
                }
                Ok(state)
            })
            .await?
        };
        let body = state.ok_or_else(|| super::not_found(&key, id))?;
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
        // The permit first: a flood past the team's share is refused before any
        // store query (600 at once must not queue 600 lookups).
        let team_permit = self.team_permit(name)?;
        let key = self.resolve(name, version).await?;
        self.aggregate_of(key, stream, team_permit).await
    }

    /// [`Refract::aggregate`] of the resolved version `key`.
    pub(in crate::service) async fn aggregate_of(
        &self,
        key: crate::store::ProjectionKey,
        stream: &StreamId,
        team_permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<Aggregate, ServiceError> {
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
        let types = &loaded.descriptor.event_types;
        let later = later_events(types, MAX_AGGREGATE_EVENTS);
        let read = self.store.doc_read(&key, DocOf::Stream(stream), later);
        let (permit, read) = self.guest_reads.read(&key, team_permit, read).await?;
        let Some(events) = read.later else {
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
                let change = guest.apply(&events, vec![input])?.pop();
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
