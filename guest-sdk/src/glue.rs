//! The wasm export glue: converts between the `wit-bindgen` types and the mirror
//! types, and sends log lines and panic reports through the host imports of the WIT
//! version the component exports. Used by
//! [`export_projection!`](crate::export_projection).
//!
//! Each version only adds to the types of the one before, so the older versions'
//! bindings use 1.2.0's types and one set of conversions serves all three; what
//! differs is `describe`'s options, `describe-settings` (1.1.0 on),
//! `describe-collections` and documents named by key (1.2.0), and which version's
//! `host` the glue calls.

use std::panic::PanicHookInfo;
use std::sync::Once;

pub use crate::bindings::v1_2::refract::projection::types as wit;

use crate::bindings::v1_2::refract::projection::host::Level as WitLevel;
use crate::log::Level;
use crate::projection::Projection;
use crate::types::{ComponentKind, DocChange, DocEvents, Event, GuestError, Slice};

/// One WIT version's host imports.
pub struct Host {
    log: fn(Level, &str),
    panicked: fn(&wit::GuestError),
    /// The version, for errors.
    version: &'static str,
    /// Whether this version's descriptor says per-stream documents with the 1.0.0
    /// option, for want of `describe-settings`.
    documents_option: bool,
    /// Whether hosts of this version honour `max-page-size`, so a larger call is
    /// refused. 1.0.0 cannot declare it: its hosts send what they like.
    checks_max_page_size: bool,
    /// Whether this version's host answers `lookup` (1.2.0).
    lookups: bool,
}

/// Exports `refract:projection@1.2.0`, the latest.
pub mod v1_2 {
    pub use crate::bindings::v1_2::exports::refract::projection::projection::Guest;

    use crate::bindings::v1_2::refract::projection::host;

    /// The 1.2.0 host imports.
    pub static HOST: super::Host = super::Host {
        log: |level, message| host::log(super::wit_level(level), message),
        panicked: host::panicked,
        version: "1.2.0",
        documents_option: false,
        checks_max_page_size: true,
        lookups: true,
    };

    /// The named collections the projection writes.
    pub fn describe_collections<P: crate::Projection>() -> Vec<String> {
        super::init(&HOST);
        P::COLLECTIONS.iter().map(|c| (*c).to_owned()).collect()
    }
}

/// Exports `refract:projection@1.1.0`, for hosts that predate 1.2.0.
pub mod v1_1 {
    pub use crate::bindings::v1_1::exports::refract::projection::projection::Guest;

    use crate::bindings::v1_1::refract::projection::host;

    /// The 1.1.0 host imports.
    pub static HOST: super::Host = super::Host {
        log: |level, message| host::log(super::wit_level(level), message),
        panicked: host::panicked,
        version: "1.1.0",
        documents_option: false,
        checks_max_page_size: true,
        lookups: false,
    };
}

/// Exports `refract:projection@1.0.0`, for hosts that predate 1.1.0.
pub mod v1_0 {
    pub use crate::bindings::v1_0::exports::refract::projection::projection::Guest;

    use crate::bindings::v1_0::refract::projection::host;

    /// The 1.0.0 host imports.
    pub static HOST: super::Host = super::Host {
        log: |level, message| host::log(super::wit_level(level), message),
        panicked: host::panicked,
        version: "1.0.0",
        documents_option: true,
        checks_max_page_size: false,
        lookups: false,
    };
}

/// How the component wants the host to call it (1.1.0 on).
pub fn describe_settings<P: Projection>(host: &'static Host) -> wit::Settings {
    init(host);
    wit::Settings {
        documents: match P::DOCUMENTS {
            crate::Documents::PerStream => wit::DocumentMode::PerStream,
            // The SDK names each tenant's document in `slice`.
            crate::Documents::Custom | crate::Documents::PerTenant => wit::DocumentMode::Custom,
        },
        max_page_size: P::MAX_PAGE_SIZE,
    }
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

/// Slices a page (1.0.0, 1.1.0: documents by id, in the default collection only).
pub fn slice<P: Projection>(
    host: &'static Host,
    page: Vec<wit::Event>,
) -> Result<Vec<wit::DocSlice>, wit::GuestError> {
    slices::<P>(host, page)?
        .into_iter()
        .map(|s| match s.collection {
            None => Ok(wit::DocSlice {
                doc_id: s.doc_id,
                events: s.events,
            }),
            Some(c) => Err(error(GuestError::new(
                format!(
                    "{} names document {c}/{} in a collection, which WIT {} cannot say: \
                     export WIT 1.2.0 (`export_projection!(P)`)",
                    P::NAME,
                    s.doc_id,
                    host.version
                ),
                None,
            ))),
        })
        .collect()
}

/// Slices a page (1.2.0: documents by key).
pub fn slice_keyed<P: Projection>(
    host: &'static Host,
    page: Vec<wit::Event>,
) -> Result<Vec<wit::KeyedSlice>, wit::GuestError> {
    Ok(slices::<P>(host, page)?
        .into_iter()
        .map(|s| wit::KeyedSlice {
            doc: wit::DocKey {
                collection: s.collection,
                id: s.doc_id,
            },
            events: s.events,
        })
        .collect())
}

fn slices<P: Projection>(
    host: &'static Host,
    page: Vec<wit::Event>,
) -> Result<Vec<Slice>, wit::GuestError> {
    init(host);
    if host.checks_max_page_size {
        crate::engine::check_page_size::<P>(page.iter().map(|e| e.sequence)).map_err(error)?;
    }
    let page: Vec<Event> = page.into_iter().map(event).collect();
    with_lookups::<P, _>(host, || crate::engine::slice::<P>(&page)).map_err(error)
}

/// Runs `f` with lookups answered by the host's `lookup` (1.2.0, a projection
/// declaring `LOOKUPS`); otherwise a lookup fails, saying what it needs.
fn with_lookups<P: Projection, R>(host: &'static Host, f: impl FnOnce() -> R) -> R {
    if !(P::LOOKUPS && host.lookups) {
        return f();
    }
    let source: crate::lookup::Source = Box::new(|docs| {
        let keys: Vec<wit::DocKey> = docs
            .iter()
            .map(|d| wit::DocKey {
                collection: d.collection.clone(),
                id: d.id.clone(),
            })
            .collect();
        crate::bindings::v1_2::refract::projection::host::lookup(&keys)
    });
    crate::lookup::with_source(source, f)
}

/// Applies each document's events (1.0.0, 1.1.0: documents by id).
pub fn apply<P: Projection>(
    host: &'static Host,
    docs: Vec<wit::DocEvents>,
) -> Result<Vec<wit::DocChange>, wit::GuestError> {
    let docs = docs.into_iter().map(|d| DocEvents {
        collection: None,
        doc_id: d.doc_id,
        state: d.state,
        events: d.events.into_iter().map(event).collect(),
    });
    apply_docs::<P>(host, docs.collect())
}

/// Applies each document's events (1.2.0: documents by key).
pub fn apply_keyed<P: Projection>(
    host: &'static Host,
    docs: Vec<wit::KeyedDocEvents>,
) -> Result<Vec<wit::DocChange>, wit::GuestError> {
    let docs = docs.into_iter().map(|d| DocEvents {
        collection: d.doc.collection,
        doc_id: d.doc.id,
        state: d.state,
        events: d.events.into_iter().map(event).collect(),
    });
    apply_docs::<P>(host, docs.collect())
}

fn apply_docs<P: Projection>(
    host: &'static Host,
    docs: Vec<DocEvents>,
) -> Result<Vec<wit::DocChange>, wit::GuestError> {
    init(host);
    if host.checks_max_page_size {
        let sequences = docs
            .iter()
            .flat_map(|d| d.events.iter().map(|e| e.sequence));
        crate::engine::check_page_size::<P>(sequences).map_err(error)?;
    }
    match with_lookups::<P, _>(host, || crate::engine::apply::<P>(docs)) {
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
