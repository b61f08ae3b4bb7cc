//! WIT `refract:projection@1.0.0`: the generated bindings, the host imports, and
//! conversions into the runtime's types.

use wasmtime::AsContextMut;
use wasmtime::component::{ComponentType, Func, HasSelf, Instance, Linker, Lower};

use super::guest::DocInput;
use super::state::{HostState, PanicReport};
use super::types::{ComponentKind, Descriptor, DocChange, Slice};
use crate::store::RecordedEvent;

mod bindings {
    wasmtime::component::bindgen!({
        world: "projector",
        path: "../wit/projection",
    });
}

use bindings::exports::refract::projection::projection as exports;
use bindings::refract::projection::{host, types};
pub(crate) use bindings::{Projector, ProjectorPre};

/// The name under which a 1.0.0 projection exports its calls.
pub const PROJECTION_EXPORT: &str = "refract:projection/projection@1.0.0";

/// Adds the 1.0.0 host imports to a linker.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    Projector::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
}

impl types::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, level: host::Level, message: String) {
        let component = self.component.as_str();
        let message = truncate(&message, 4096);
        match level {
            host::Level::Trace => tracing::trace!(component, "{message}"),
            host::Level::Debug => tracing::debug!(component, "{message}"),
            host::Level::Info => tracing::info!(component, "{message}"),
            host::Level::Warn => tracing::warn!(component, "{message}"),
            host::Level::Error => tracing::error!(component, "{message}"),
        }
    }

    fn panicked(&mut self, error: types::GuestError) {
        self.panic = Some(PanicReport {
            message: truncate(&error.message, 4096).to_owned(),
            event_sequence: error.event_sequence.and_then(|s| i64::try_from(s).ok()),
        });
    }
}

/// Cuts `s` to at most `max` bytes at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl From<exports::Descriptor> for Descriptor {
    fn from(d: exports::Descriptor) -> Self {
        Self {
            name: d.name,
            version: d.version,
            kind: match d.kind {
                types::ComponentKind::Projection => ComponentKind::Projection,
                types::ComponentKind::Subscription => ComponentKind::Subscription,
            },
            event_types: d.event_types,
            options: d.options,
        }
    }
}

impl From<exports::DocSlice> for Slice {
    fn from(s: exports::DocSlice) -> Self {
        Self {
            doc_id: s.doc_id,
            events: s.events,
        }
    }
}

impl From<exports::DocChange> for DocChange {
    fn from(c: exports::DocChange) -> Self {
        match c {
            exports::DocChange::Put(body) => Self::Put(body),
            exports::DocChange::Delete => Self::Delete,
            exports::DocChange::Keep => Self::Keep,
        }
    }
}

/// A guest's own error, as the runtime reports it.
pub(crate) struct GuestFailure {
    pub message: String,
    pub event_sequence: Option<i64>,
}

impl From<exports::GuestError> for GuestFailure {
    fn from(e: exports::GuestError) -> Self {
        Self {
            message: e.message,
            event_sequence: e.event_sequence.and_then(|s| i64::try_from(s).ok()),
        }
    }
}

/// An event lowered straight from the store's record: no string is copied on the host.
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

impl<'a> From<&'a RecordedEvent> for EventRef<'a> {
    fn from(e: &'a RecordedEvent) -> Self {
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

/// The page calls of a 1.0.0 instance, looked up once per instance.
pub(crate) struct PageCalls {
    slice: Func,
    apply: Func,
}

type SliceResult = Result<Vec<exports::DocSlice>, exports::GuestError>;
type ApplyResult = Result<Vec<exports::DocChange>, exports::GuestError>;

impl PageCalls {
    /// Finds `slice` and `apply` in an instance of a 1.0.0 projection.
    pub fn lookup(mut store: impl AsContextMut, instance: &Instance) -> wasmtime::Result<Self> {
        let iface = instance
            .get_export_index(&mut store, None, PROJECTION_EXPORT)
            .ok_or_else(|| wasmtime::format_err!("no export {PROJECTION_EXPORT}"))?;
        let mut func = |name: &str| {
            instance
                .get_export_index(&mut store, Some(&iface), name)
                .and_then(|i| instance.get_func(&mut store, i))
                .ok_or_else(|| wasmtime::format_err!("no function {name} in {PROJECTION_EXPORT}"))
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
        page: &[RecordedEvent],
    ) -> wasmtime::Result<Result<Vec<Slice>, GuestFailure>> {
        let events: Vec<EventRef<'_>> = page.iter().map(EventRef::from).collect();
        let f = self
            .slice
            .typed::<(&[EventRef<'_>],), (SliceResult,)>(&store)?;
        let (out,) = f.call(&mut store, (&events,))?;
        Ok(out
            .map(|v| v.into_iter().map(Slice::from).collect())
            .map_err(GuestFailure::from))
    }

    /// `apply(docs)`, each document with its events taken from the page by index.
    pub fn apply(
        &self,
        mut store: impl AsContextMut,
        page: &[RecordedEvent],
        docs: &[DocInput],
    ) -> wasmtime::Result<Result<Vec<DocChange>, GuestFailure>> {
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
        Ok(out
            .map(|v| v.into_iter().map(DocChange::from).collect())
            .map_err(GuestFailure::from))
    }
}
