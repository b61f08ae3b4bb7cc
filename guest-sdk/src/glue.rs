//! The wasm export glue: converts between `wit-bindgen` types and the mirror types, and
//! reports panics to the host. Used by [`export_projection!`](crate::export_projection).

use std::panic::PanicHookInfo;
use std::sync::Once;

pub use crate::bindings::exports::refract::projection::projection::Guest;
pub use crate::bindings::refract::projection::types as wit;

use crate::bindings::refract::projection::host;
use crate::projection::Projection;
use crate::types::{ComponentKind, DocChange, DocEvents, Event, GuestError};

/// The component's descriptor.
pub fn describe<P: Projection>() -> wit::Descriptor {
    init();
    let d = crate::engine::describe::<P>();
    wit::Descriptor {
        name: d.name,
        version: d.version,
        kind: match d.kind {
            ComponentKind::Projection => wit::ComponentKind::Projection,
            ComponentKind::Subscription => wit::ComponentKind::Subscription,
        },
        event_types: d.event_types,
        options: d.options,
    }
}

/// Slices a page.
pub fn slice<P: Projection>(page: Vec<wit::Event>) -> Result<Vec<wit::DocSlice>, wit::GuestError> {
    init();
    let page: Vec<Event> = page.into_iter().map(event).collect();
    match crate::engine::slice::<P>(&page) {
        Ok(slices) => Ok(slices
            .into_iter()
            .map(|s| wit::DocSlice {
                doc_id: s.doc_id,
                events: s.events,
            })
            .collect()),
        Err(e) => Err(error(e)),
    }
}

/// Applies each document's events.
pub fn apply<P: Projection>(
    docs: Vec<wit::DocEvents>,
) -> Result<Vec<wit::DocChange>, wit::GuestError> {
    init();
    let docs = docs
        .into_iter()
        .map(|d| DocEvents {
            doc_id: d.doc_id,
            state: d.state,
            events: d.events.into_iter().map(event).collect(),
        })
        .collect();
    match crate::engine::apply::<P>(docs) {
        Ok(changes) => Ok(changes
            .into_iter()
            .map(|c| match c {
                DocChange::Put(json) => wit::DocChange::Put(json),
                DocChange::Delete => wit::DocChange::Delete,
                DocChange::Keep => wit::DocChange::Keep,
            })
            .collect()),
        Err(e) => Err(error(e)),
    }
}

fn event(e: wit::Event) -> Event {
    Event {
        sequence: e.sequence,
        stream_id: e.stream_id,
        stream_version: e.stream_version,
        event_type: e.event_type,
        data: e.data,
        metadata: e.metadata,
        tenant: e.tenant,
        timestamp: e.timestamp,
    }
}

fn error(e: GuestError) -> wit::GuestError {
    wit::GuestError {
        message: e.message,
        event_sequence: e.event_sequence,
    }
}

/// Installs the panic hook, once.
fn init() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| std::panic::set_hook(Box::new(report_panic)));
}

/// Tells the host why the guest is about to trap, and at which event.
fn report_panic(info: &PanicHookInfo<'_>) {
    let message = info.payload_as_str().unwrap_or("(no message)");
    let message = match info.location() {
        Some(at) => format!("panicked at {at}: {message}"),
        None => format!("panicked: {message}"),
    };
    host::panicked(&wit::GuestError {
        message,
        event_sequence: crate::engine::current_sequence(),
    });
}
