//! WIT `refract:projection@1.0.0`: the generated bindings, the host imports, and
//! conversions into the runtime's types.

use wasmtime::component::{HasSelf, Linker};

use super::state::{HostState, PanicReport};
use super::types::{ComponentKind, Descriptor, DocChange, Slice};

mod bindings {
    wasmtime::component::bindgen!({
        world: "projector",
        path: "../wit/projection",
    });
}

use bindings::exports::refract::projection::projection as exports;
pub(crate) use bindings::exports::refract::projection::projection::{
    DocEvents as WitDocEvents, Event as WitEvent,
};
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
