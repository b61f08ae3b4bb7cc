//! The wasm export glue: converts between the `wit-bindgen` types and the mirror
//! types, and sends log lines and panic reports through the host imports of the WIT
//! version the component exports. Used by
//! [`export_projection!`](crate::export_projection).
//!
//! 1.1.0 only adds to 1.0.0, so 1.0.0's bindings use 1.1.0's types and one set of
//! conversions serves both; what differs is `describe`'s options, 1.1.0's
//! `describe-settings`, and which version's `host` the glue calls.

use std::panic::PanicHookInfo;
use std::sync::Once;

pub use crate::bindings::v1_1::refract::projection::types as wit;

use crate::bindings::v1_1::refract::projection::host::Level as WitLevel;
use crate::log::Level;
use crate::projection::Projection;
use crate::types::{ComponentKind, DocChange, DocEvents, Event, GuestError};

/// One WIT version's host imports.
pub struct Host {
    log: fn(Level, &str),
    panicked: fn(&wit::GuestError),
    /// Whether this version's descriptor says per-stream documents with the 1.0.0
    /// option, for want of `describe-settings`.
    documents_option: bool,
    /// Whether hosts of this version honour `max-page-size`, so a larger call is
    /// refused. 1.0.0 cannot declare it: its hosts send what they like.
    checks_max_page_size: bool,
}

/// Exports `refract:projection@1.1.0`, the latest.
pub mod v1_1 {
    pub use crate::bindings::v1_1::exports::refract::projection::projection::Guest;

    use super::wit;
    use crate::bindings::v1_1::refract::projection::host;

    /// The 1.1.0 host imports.
    pub static HOST: super::Host = super::Host {
        log: |level, message| host::log(super::wit_level(level), message),
        panicked: host::panicked,
        documents_option: false,
        checks_max_page_size: true,
    };

    /// How the component wants the host to call it.
    pub fn describe_settings<P: crate::Projection>() -> wit::Settings {
        super::init(&HOST);
        wit::Settings {
            documents: match P::DOCUMENTS {
                crate::Documents::PerStream => wit::DocumentMode::PerStream,
                // The SDK names each tenant's document in `slice`.
                crate::Documents::Custom | crate::Documents::PerTenant => wit::DocumentMode::Custom,
            },
            max_page_size: P::MAX_PAGE_SIZE,
        }
    }
}

/// Exports `refract:projection@1.0.0`, for hosts that predate 1.1.0.
pub mod v1_0 {
    pub use crate::bindings::v1_0::exports::refract::projection::projection::Guest;

    use crate::bindings::v1_0::refract::projection::host;

    /// The 1.0.0 host imports.
    pub static HOST: super::Host = super::Host {
        log: |level, message| host::log(super::wit_level(level), message),
        panicked: host::panicked,
        documents_option: true,
        checks_max_page_size: false,
    };
}

/// A log level as the WIT `host.log` of both versions takes it.
fn wit_level(level: Level) -> WitLevel {
    match level {
        Level::Trace => WitLevel::Trace,
        Level::Debug => WitLevel::Debug,
        Level::Info => WitLevel::Info,
        Level::Warn => WitLevel::Warn,
        Level::Error => WitLevel::Error,
    }
}

/// The component's descriptor.
pub fn describe<P: Projection>(host: &'static Host) -> wit::Descriptor {
    init(host);
    let d = crate::engine::describe::<P>();
    let options = match host.documents_option {
        true => d.v1_0_options(),
        false => d.options,
    };
    wit::Descriptor {
        name: d.name,
        version: d.version,
        kind: match d.kind {
            ComponentKind::Projection => wit::ComponentKind::Projection,
            ComponentKind::Subscription => wit::ComponentKind::Subscription,
        },
        event_types: d.event_types,
        options,
    }
}

/// Slices a page.
pub fn slice<P: Projection>(
    host: &'static Host,
    page: Vec<wit::Event>,
) -> Result<Vec<wit::DocSlice>, wit::GuestError> {
    init(host);
    if host.checks_max_page_size {
        crate::engine::check_page_size::<P>(page.iter().map(|e| e.sequence)).map_err(error)?;
    }
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
    host: &'static Host,
    docs: Vec<wit::DocEvents>,
) -> Result<Vec<wit::DocChange>, wit::GuestError> {
    init(host);
    if host.checks_max_page_size {
        let sequences = docs
            .iter()
            .flat_map(|d| d.events.iter().map(|e| e.sequence));
        crate::engine::check_page_size::<P>(sequences).map_err(error)?;
    }
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

/// Installs the panic hook and the log sink of the exported version, once.
fn init(host: &'static Host) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let panicked = host.panicked;
        std::panic::set_hook(Box::new(move |info| report_panic(panicked, info)));
        crate::log::set_sink(host.log);
    });
}

/// Tells the host why the guest is about to trap, and at which event.
fn report_panic(panicked: fn(&wit::GuestError), info: &PanicHookInfo<'_>) {
    panicked(&wit::GuestError {
        message: panic_message(info),
        event_sequence: crate::engine::current_sequence(),
    });
}

/// A panic's message and where it happened, for the host's report.
pub(crate) fn panic_message(info: &PanicHookInfo<'_>) -> String {
    let message = info.payload_as_str().unwrap_or("(no message)");
    match info.location() {
        Some(at) => format!("panicked at {at}: {message}"),
        None => format!("panicked: {message}"),
    }
}
