//! The page calls, `slice` and `apply`, shared by every WIT version, found under the
//! version's export name. 1.0.0 and 1.1.0 name a document by its id; 1.2.0 by its
//! key (collection and id), which the host joins into its one text key (see
//! [`doc_key`]) as it lifts the result and splits again as it lowers the input.
//! Parameters are lowered straight from the runtime's events (no string copied on the
//! host); results are lifted straight into the runtime's types.

use wasmtime::AsContextMut;
use wasmtime::component::{ComponentType, Func, Instance, Lift, Lower};

use super::types::{DocChange, DocInput, Slice, WitVersion};
use crate::event::Event;
use crate::identity::doc_key;

/// A guest's own error (WIT `guest-error`), as it returned it.
#[derive(ComponentType, Lift)]
#[component(record)]
pub(crate) struct GuestFailure {
    pub message: String,
    #[component(name = "event-sequence")]
    event_sequence: Option<u64>,
}

impl GuestFailure {
    /// The event the guest failed on, as a store sequence.
    pub fn event_sequence(&self) -> Option<i64> {
        self.event_sequence.and_then(|s| i64::try_from(s).ok())
    }
}

/// An event lowered straight from the runtime's event: no string is copied on the host.
#[derive(ComponentType, Lower)]
#[component(record)]
struct EventRef<'a> {
    sequence: u64,
    #[component(name = "stream-id")]
    stream_id: &'a str,
    #[component(name = "stream-version")]
    stream_version: u64,
    #[component(name = "event-type")]
    event_type: &'a str,
    data: &'a str,
    metadata: &'a str,
    tenant: Option<&'a str>,
    timestamp: i64,
}

impl<'a> From<&'a Event> for EventRef<'a> {
    fn from(e: &'a Event) -> Self {
        Self {
            sequence: e.sequence as u64,
            stream_id: &e.stream_id,
            stream_version: e.stream_version,
            event_type: &e.event_type,
            data: &e.data,
            metadata: &e.metadata,
            tenant: e.tenant.as_deref(),
            timestamp: e.timestamp,
        }
    }
}

/// A document and its events, borrowed from the agent's page and cache.
#[derive(ComponentType, Lower)]
#[component(record)]
struct DocEventsRef<'a> {
    #[component(name = "doc-id")]
    doc_id: &'a str,
    state: Option<&'a str>,
    events: Vec<EventRef<'a>>,
}

/// A document's key as 1.2.0 says it (WIT `doc-key`), lifted.
#[derive(ComponentType, Lift)]
#[component(record)]
struct DocKey {
    collection: Option<String>,
    id: String,
}

/// Which events touch one document, 1.2.0's way (WIT `keyed-slice`).
#[derive(ComponentType, Lift)]
#[component(record)]
struct KeyedSlice {
    doc: DocKey,
    events: Vec<u32>,
}

/// Bytes the host may hold per document a `slice` names, as lifted (the larger of
/// the two shapes), for its hostcall fuel.
pub(crate) const SLICE_RECORD_BYTES: usize = {
    let (a, b) = (size_of::<Slice>(), size_of::<KeyedSlice>());
    if a > b { a } else { b }
};

impl KeyedSlice {
    /// The slice under the host's one text key, once its parts are a collection
    /// name and a plain id (checked here, before the join: a default-collection id
    /// holding the separator must not spell another collection's key).
    fn joined(self) -> Result<Slice, String> {
        let DocKey { collection, id } = self.doc;
        Ok(Slice {
            doc_id: join_key(collection, id).map_err(|m| format!("slice: {m}"))?,
            events: self.events,
        })
    }
}

/// The host's text key of a guest's (collection, id), once they are a collection
/// name and a plain id (checked before the join: a default-collection id holding
/// the separator must not spell another collection's key).
pub(crate) fn join_key(collection: Option<String>, id: String) -> Result<String, String> {
    if !crate::identity::is_text(&id, crate::identity::MAX_STREAM_ID_LEN) {
        return Err(format!(
            "document id {} ({} bytes) must be 1 to {} bytes without control characters",
            crate::identity::preview(&id),
            id.len(),
            crate::identity::MAX_STREAM_ID_LEN
        ));
    }
    if let Some(c) = &collection {
        doc_key::check_collection(c)?;
    }
    Ok(doc_key::doc_key(collection.as_deref(), &id))
}

/// A document's key, lowered from the host's text key.
#[derive(ComponentType, Lower)]
#[component(record)]
struct DocKeyRef<'a> {
    collection: Option<&'a str>,
    id: &'a str,
}

/// A document and its events, 1.2.0's way (WIT `keyed-doc-events`).
#[derive(ComponentType, Lower)]
#[component(record)]
struct KeyedDocEventsRef<'a> {
    doc: DocKeyRef<'a>,
    state: Option<&'a str>,
    events: Vec<EventRef<'a>>,
}

/// The page calls of one instance, looked up once per instance.
pub(crate) struct PageCalls {
    slice: Func,
    apply: Func,
    /// Whether documents are named by key (1.2.0) rather than by id.
    keyed: bool,
}

type SliceResult = Result<Vec<Slice>, GuestFailure>;
type KeyedSliceResult = Result<Vec<KeyedSlice>, GuestFailure>;
type ApplyResult = Result<Vec<DocChange>, GuestFailure>;

impl PageCalls {
    /// Finds `slice` and `apply` in the instance's projection interface of WIT
    /// `version`.
    pub fn lookup(
        mut store: impl AsContextMut,
        instance: &Instance,
        version: WitVersion,
    ) -> wasmtime::Result<Self> {
        let export = version.projection_export();
        let iface = instance
            .get_export_index(&mut store, None, export)
            .ok_or_else(|| wasmtime::format_err!("no export {export}"))?;
        let mut func = |name: &str| {
            instance
                .get_export_index(&mut store, Some(&iface), name)
                .and_then(|i| instance.get_func(&mut store, i))
                .ok_or_else(|| wasmtime::format_err!("no function {name} in {export}"))
        };
        Ok(Self {
            slice: func("slice")?,
            apply: func("apply")?,
            keyed: version >= WitVersion::V1_2,
        })
    }

    /// `slice(page)`.
    pub fn slice(
        &self,
        mut store: impl AsContextMut,
        page: &[Event],
    ) -> wasmtime::Result<SliceResult> {
        let events: Vec<EventRef<'_>> = page.iter().map(EventRef::from).collect();
        if self.keyed {
            let f = self
                .slice
                .typed::<(&[EventRef<'_>],), (KeyedSliceResult,)>(&store)?;
            let (out,) = f.call(&mut store, (&events,))?;
            let joined = out.map(|slices| {
                slices
                    .into_iter()
                    .map(KeyedSlice::joined)
                    .collect::<Result<Vec<Slice>, String>>()
            });
            return Ok(match joined {
                Ok(Ok(slices)) => Ok(slices),
                Ok(Err(message)) => Err(GuestFailure {
                    message,
                    event_sequence: None,
                }),
                Err(e) => Err(e),
            });
        }
        let f = self
            .slice
            .typed::<(&[EventRef<'_>],), (SliceResult,)>(&store)?;
        let (out,) = f.call(&mut store, (&events,))?;
        Ok(out)
    }

    /// `apply(docs)`, each document with its events taken from the page by index.
    pub fn apply(
        &self,
        mut store: impl AsContextMut,
        page: &[Event],
        docs: &[DocInput],
    ) -> wasmtime::Result<ApplyResult> {
        let events = |d: &DocInput| -> Vec<EventRef<'_>> {
            d.events
                .iter()
                .filter_map(|&i| page.get(i as usize).map(EventRef::from))
                .collect()
        };
        if self.keyed {
            let input: Vec<KeyedDocEventsRef<'_>> = docs
                .iter()
                .map(|d| {
                    let (collection, id) = doc_key::split_key(&d.id);
                    KeyedDocEventsRef {
                        doc: DocKeyRef { collection, id },
                        state: d.state.as_deref(),
                        events: events(d),
                    }
                })
                .collect();
            let f = self
                .apply
                .typed::<(&[KeyedDocEventsRef<'_>],), (ApplyResult,)>(&store)?;
            let (out,) = f.call(&mut store, (&input,))?;
            return Ok(out);
        }
        let input: Vec<DocEventsRef<'_>> = docs
            .iter()
            .map(|d| DocEventsRef {
                doc_id: &d.id,
                state: d.state.as_deref(),
                events: events(d),
            })
            .collect();
        let f = self
            .apply
            .typed::<(&[DocEventsRef<'_>],), (ApplyResult,)>(&store)?;
        let (out,) = f.call(&mut store, (&input,))?;
        Ok(out)
    }
}
