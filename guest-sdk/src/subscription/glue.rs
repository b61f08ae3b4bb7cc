//! The wasm glue of subscriptions: `refract:subscription@1.1.0` and `@1.0.0`
//! bindings, the host's effects, and the panic report. Used by
//! [`export_subscription!`](crate::export_subscription). Each version's calls into
//! the host go through its own [`Host`] table, so a 1.0.0 component imports nothing
//! of 1.1.0.

use std::panic::PanicHookInfo;
use std::sync::Once;

/// The generated bindings of each version's `subscriber` world.
pub mod bindings {
    /// `refract:subscription@1.1.0`.
    pub mod v1_1 {
        wit_bindgen::generate!({
            path: "../wit/subscription-1.1.0",
            world: "subscriber",
            pub_export_macro: true,
            default_bindings_module: "refract_guest::subscription::glue::bindings::v1_1",
        });
    }

    /// `refract:subscription@1.0.0`, through a world of another name (each generated
    /// export macro is exported under a name made from its world's).
    pub mod v1_0 {
        wit_bindgen::generate!({
            inline: "package refract:guest-sdk-subscription;
                     world subscriber-v100 { include refract:subscription/subscriber@1.0.0; }",
            path: "../wit/subscription",
            world: "subscriber-v100",
            // 1.1.0 only adds to 1.0.0's types: one set of types, and of glue.
            with: {
                "refract:subscription/types@1.0.0": crate::subscription::glue::bindings::v1_1::refract::subscription::types,
                "refract:subscription/host@1.0.0/level": crate::subscription::glue::bindings::v1_1::refract::subscription::host::Level,
            },
            generate_all,
            pub_export_macro: true,
            default_bindings_module: "refract_guest::subscription::glue::bindings::v1_0",
        });
    }
}

pub use bindings::v1_1::refract::subscription::types as wit;

use super::{Effects, Expected, NewEvent, Start, Subscription};
use crate::log::Level;
use crate::types::Event;
use bindings::v1_1::refract::subscription::host::Level as WitLevel;

/// One WIT version's host calls.
pub struct Host {
    log: fn(Level, &str),
    panicked: fn(&wit::GuestError),
    emit: fn(&str, wit::ExpectedVersion, &[wit::NewEvent], Option<&str>) -> Result<u64, String>,
    read_stream: fn(&str) -> Result<wit::StreamState, String>,
    /// None before 1.1.0: paged reads are served from `read_stream`.
    read_stream_page: Option<fn(&str, u64, u32) -> Result<wit::StreamState, String>>,
    send: fn(&str, &str, &str) -> Result<(), String>,
    setting: fn(&str) -> Option<String>,
}

/// `refract:subscription@1.1.0`.
pub mod v1_1 {
    pub use super::bindings::v1_1::exports::refract::subscription::subscription::Guest;

    use super::bindings::v1_1::refract::subscription::host;

    /// 1.1.0's host calls.
    pub static HOST: super::Host = super::Host {
        log: |level, message| host::log(super::wit_level(level), message),
        panicked: host::panicked,
        emit: host::emit,
        read_stream: host::read_stream,
        read_stream_page: Some(host::read_stream_page),
        send: host::send,
        setting: host::setting,
    };
}

/// `refract:subscription@1.0.0`.
pub mod v1_0 {
    pub use super::bindings::v1_0::exports::refract::subscription::subscription::Guest;

    use super::bindings::v1_0::refract::subscription::host;

    /// 1.0.0's host calls.
    pub static HOST: super::Host = super::Host {
        log: |level, message| host::log(super::wit_level(level), message),
        panicked: host::panicked,
        emit: host::emit,
        read_stream: host::read_stream,
        read_stream_page: None,
        send: host::send,
        setting: host::setting,
    };
}

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
pub fn describe<S: Subscription>(host: &'static Host) -> wit::Descriptor {
    init(host);
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

/// The component's settings (1.1.0).
pub fn describe_settings<S: Subscription>() -> wit::Settings {
    wit::Settings {
        max_page_size: S::MAX_PAGE_SIZE,
    }
}

/// Handles a page through the host's effects.
pub fn handle<S: Subscription>(
    host: &'static Host,
    page: Vec<wit::Event>,
) -> Result<(), wit::GuestError> {
    init(host);
    let page: Vec<Event> = page.into_iter().map(event).collect();
    super::handle::<S>(&mut HostEffects(host), &page).map_err(|e| wit::GuestError {
        message: e.message,
        event_sequence: e.event_sequence,
    })
}

/// The effects, as calls into the host.
struct HostEffects(&'static Host);

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
        (self.0.emit)(stream, expected, &events, idempotency_key)
    }

    fn read_stream(&mut self, stream: &str) -> Result<(u64, Vec<Event>), String> {
        if self.0.read_stream_page.is_none() {
            let s = (self.0.read_stream)(stream)?;
            return Ok((s.version, s.events.into_iter().map(event).collect()));
        }
        // 1.1.0: page by page, so the host never holds the whole stream at once.
        let mut all = Vec::new();
        loop {
            let from = all.last().map_or(1, |e: &Event| e.stream_version + 1);
            let (version, page) = self.read_stream_page(stream, from, super::STREAM_PAGE)?;
            let done = page.is_empty() || page.last().is_some_and(|e| e.stream_version >= version);
            all.extend(page);
            if done {
                return Ok((version, all));
            }
        }
    }

    fn read_stream_page(
        &mut self,
        stream: &str,
        from_version: u64,
        limit: u32,
    ) -> Result<(u64, Vec<Event>), String> {
        let Some(read) = self.0.read_stream_page else {
            let (version, events) = self.read_stream(stream)?;
            let events = events
                .into_iter()
                .filter(|e| e.stream_version >= from_version)
                .take(limit as usize)
                .collect();
            return Ok((version, events));
        };
        let s = read(stream, from_version, limit)?;
        Ok((s.version, s.events.into_iter().map(event).collect()))
    }

    fn send(&mut self, url: &str, body: String, key: &str) -> Result<(), String> {
        (self.0.send)(url, &body, key)
    }

    fn setting(&mut self, key: &str) -> Option<String> {
        (self.0.setting)(key)
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

/// Installs the panic hook and the log sink, once.
fn init(host: &'static Host) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(move |info| report_panic(host.panicked, info)));
        crate::log::set_sink(host.log);
    });
}

/// Tells the host why the guest is about to trap, and at which event.
fn report_panic(panicked: fn(&wit::GuestError), info: &PanicHookInfo<'_>) {
    panicked(&wit::GuestError {
        message: crate::__glue::panic_message(info),
        event_sequence: crate::engine::current_sequence(),
    });
}
