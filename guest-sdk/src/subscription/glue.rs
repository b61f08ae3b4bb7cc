//! The wasm glue of subscriptions: `refract:subscription@1.0.0` bindings, the host's
//! effects, and the panic report. Used by [`export_subscription!`](crate::export_subscription).

use std::panic::PanicHookInfo;
use std::sync::Once;

/// The generated bindings of the `subscriber` world.
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/subscription",
        world: "subscriber",
        pub_export_macro: true,
        export_macro_name: "__export_subscriber",
        default_bindings_module: "refract_guest::subscription::glue::bindings",
    });
}

pub use bindings::exports::refract::subscription::subscription::Guest;
pub use bindings::refract::subscription::types as wit;

use super::{Effects, Expected, NewEvent, Start, Subscription};
use crate::types::Event;
use bindings::refract::subscription::host;

/// The component's descriptor.
pub fn describe<S: Subscription>() -> wit::Descriptor {
    init();
    let d = super::describe::<S>();
    wit::Descriptor {
        name: d.name,
        version: d.version,
        event_types: d.event_types,
        start: match d.start {
            Start::Beginning => wit::StartPosition::Beginning,
            Start::Now => wit::StartPosition::Now,
            Start::AfterSequence(s) => wit::StartPosition::AfterSequence(s),
            Start::AtTime(t) => wit::StartPosition::AtTime(t),
        },
        effects_during_catch_up: d.effects_during_catch_up,
        options: Vec::new(),
    }
}

/// Handles a page through the host's effects.
pub fn handle<S: Subscription>(page: Vec<wit::Event>) -> Result<(), wit::GuestError> {
    init();
    let page: Vec<Event> = page.into_iter().map(event).collect();
    super::handle::<S>(&mut HostEffects, &page).map_err(|e| wit::GuestError {
        message: e.message,
        event_sequence: e.event_sequence,
    })
}

/// The effects, as calls into the host.
struct HostEffects;

impl Effects for HostEffects {
    fn emit(
        &mut self,
        stream: &str,
        expected: Expected,
        events: Vec<NewEvent>,
        idempotency_key: Option<&str>,
    ) -> Result<u64, String> {
        let expected = match expected {
            Expected::Any => wit::ExpectedVersion::Any,
            Expected::NoStream => wit::ExpectedVersion::NoStream,
            Expected::Exact(v) => wit::ExpectedVersion::Exact(v),
        };
        let events: Vec<wit::NewEvent> = events
            .into_iter()
            .map(|e| wit::NewEvent {
                event_type: e.event_type,
                data: e.data,
                metadata: None,
            })
            .collect();
        host::emit(stream, expected, &events, idempotency_key)
    }

    fn read_stream(&mut self, stream: &str) -> Result<(u64, Vec<Event>), String> {
        let s = host::read_stream(stream)?;
        Ok((s.version, s.events.into_iter().map(event).collect()))
    }

    fn send(&mut self, url: &str, body: String, key: &str) -> Result<(), String> {
        host::send(url, &body, key)
    }

    fn setting(&mut self, key: &str) -> Option<String> {
        host::setting(key)
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

/// Installs the panic hook, once.
fn init() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(report_panic));
        crate::log::set_sink(log_line);
    });
}

/// Sends the SDK's log lines to the subscription world's `host.log`.
fn log_line(level: crate::log::Level, message: &str) {
    use crate::log::Level as L;
    let level = match level {
        L::Trace => host::Level::Trace,
        L::Debug => host::Level::Debug,
        L::Info => host::Level::Info,
        L::Warn => host::Level::Warn,
        L::Error => host::Level::Error,
    };
    host::log(level, message);
}

/// Tells the host why the guest is about to trap, and at which event.
fn report_panic(info: &PanicHookInfo<'_>) {
    host::panicked(&wit::GuestError {
        message: crate::__glue::panic_message(info),
        event_sequence: crate::engine::current_sequence(),
    });
}
