//! The page calls, `slice` and `apply`, shared by every WIT version: their parameter
//! and result types have the same shape in 1.0.0 and 1.1.0, so one set of typed
//! functions serves both, found under the version's export name. Parameters are
//! lowered straight from the runtime's events (no string copied on the host); results
//! are lifted straight into the runtime's types.

use wasmtime::AsContextMut;
use wasmtime::component::{ComponentType, Func, Instance, Lift, Lower};

use super::types::{DocChange, DocInput, Slice};
use crate::event::Event;

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

/// The page calls of one instance, looked up once per instance.
pub(crate) struct PageCalls {
    slice: Func,
    apply: Func,
}

type SliceResult = Result<Vec<Slice>, GuestFailure>;
type ApplyResult = Result<Vec<DocChange>, GuestFailure>;

impl PageCalls {
    /// Finds `slice` and `apply` in the instance's export `export` (the projection
    /// interface of its WIT version).
    pub fn lookup(
        mut store: impl AsContextMut,
        instance: &Instance,
        export: &str,
    ) -> wasmtime::Result<Self> {
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
        })
    }

    /// `slice(page)`.
    pub fn slice(
        &self,
        mut store: impl AsContextMut,
        page: &[Event],
    ) -> wasmtime::Result<SliceResult> {
        let events: Vec<EventRef<'_>> = page.iter().map(EventRef::from).collect();
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
        let input: Vec<DocEventsRef<'_>> = docs
            .iter()
            .map(|d| DocEventsRef {
                doc_id: &d.id,
                state: d.state.as_deref(),
                events: d
                    .events
                    .iter()
                    .filter_map(|&i| page.get(i as usize).map(EventRef::from))
                    .collect(),
            })
            .collect();
        let f = self
            .apply
            .typed::<(&[DocEventsRef<'_>],), (ApplyResult,)>(&store)?;
        let (out,) = f.call(&mut store, (&input,))?;
        Ok(out)
    }
}
