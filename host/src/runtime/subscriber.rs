//! WIT `refract:subscription@1.0.0`: subscriptions. During one `handle` call the
//! daemon lends the instance a [`SubscriberHost`] that answers `emit`, `read-stream`,
//! `send` and `setting`; the runtime itself knows nothing of the store.

use wasmtime::component::HasSelf;
use wasmtime::component::Linker;

use super::state::HostState;
use crate::store::RecordedEvent;

mod bindings {
    wasmtime::component::bindgen!({
        world: "subscriber",
        path: "../wit/subscription",
    });
}

use bindings::exports::refract::subscription::subscription as exports;
use bindings::refract::subscription::{host, types};
pub(crate) use bindings::{Subscriber as Bindings, SubscriberPre};

/// The name under which a 1.0.0 subscription exports its calls.
pub const SUBSCRIPTION_EXPORT: &str = "refract:subscription/subscription@1.0.0";

/// Adds the subscription host imports to a linker.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    Bindings::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
}

/// Where a subscription starts when first deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StartPosition {
    /// From the first event.
    Beginning,
    /// After the last event at deploy time.
    Now,
    /// After this sequence.
    AfterSequence(i64),
    /// From the first event recorded at or after this time (µs since the epoch).
    AtTime(i64),
}

/// What a subscription says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionDescriptor {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: u32,
    /// The event types it handles.
    pub event_types: Vec<String>,
    /// Where it starts.
    pub start: StartPosition,
    /// Whether it wants its side effects while a new version catches up.
    pub effects_during_catch_up: bool,
}

/// The version a stream must be at for an emit to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// No check.
    Any,
    /// The stream must not exist.
    NoStream,
    /// Exactly this version.
    Exact(u64),
}

/// One event a subscription emits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmittedEvent {
    /// Its type.
    pub event_type: String,
    /// Its data, JSON text.
    pub data: String,
    /// Its metadata, JSON text, if given.
    pub metadata: Option<String>,
}

/// The host side of a subscription's imports for one `handle` call; the error
/// strings go back to the guest.
pub trait SubscriberHost: Send {
    /// Appends events as part of the page; returns the stream's new version.
    fn emit(
        &mut self,
        stream: String,
        expected: Expected,
        events: Vec<EmittedEvent>,
        idempotency_key: Option<String>,
    ) -> Result<u64, String>;

    /// The stream's version and events, this page's emits included.
    fn read_stream(&mut self, stream: String) -> Result<(u64, Vec<RecordedEvent>), String>;

    /// Queues a message for the outbox.
    fn send(&mut self, url: String, body: String, key: String) -> Result<(), String>;

    /// A setting of this component from the daemon's config.
    fn setting(&mut self, key: String) -> Option<String>;
}

const OUTSIDE_A_PAGE: &str = "only possible while handling a page";

impl types::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, level: host::Level, message: String) {
        let level = match level {
            host::Level::Trace => tracing::Level::TRACE,
            host::Level::Debug => tracing::Level::DEBUG,
            host::Level::Info => tracing::Level::INFO,
            host::Level::Warn => tracing::Level::WARN,
            host::Level::Error => tracing::Level::ERROR,
        };
        self.log_line(level, &message);
    }

    fn panicked(&mut self, error: types::GuestError) {
        self.record_panic(&error.message, error.event_sequence);
    }

    fn emit(
        &mut self,
        stream_id: String,
        expected: types::ExpectedVersion,
        events: Vec<types::NewEvent>,
        idempotency_key: Option<String>,
    ) -> Result<u64, String> {
        let expected = match expected {
            types::ExpectedVersion::Any => Expected::Any,
            types::ExpectedVersion::NoStream => Expected::NoStream,
            types::ExpectedVersion::Exact(v) => Expected::Exact(v),
        };
        let events = events
            .into_iter()
            .map(|e| EmittedEvent {
                event_type: e.event_type,
                data: e.data,
                metadata: e.metadata,
            })
            .collect();
        match self.subscriber.as_mut() {
            Some(h) => h.emit(stream_id, expected, events, idempotency_key),
            None => Err(format!("emit is {OUTSIDE_A_PAGE}")),
        }
    }

    fn read_stream(&mut self, stream_id: String) -> Result<types::StreamState, String> {
        let h = self
            .subscriber
            .as_mut()
            .ok_or_else(|| format!("read-stream is {OUTSIDE_A_PAGE}"))?;
        let (version, events) = h.read_stream(stream_id)?;
        Ok(types::StreamState {
            version,
            events: events.into_iter().map(event).collect(),
        })
    }

    fn setting(&mut self, key: String) -> Option<String> {
        self.subscriber.as_mut().and_then(|h| h.setting(key))
    }

    fn send(&mut self, url: String, body: String, key: String) -> Result<(), String> {
        match self.subscriber.as_mut() {
            Some(h) => h.send(url, body, key),
            None => Err(format!("send is {OUTSIDE_A_PAGE}")),
        }
    }
}

/// A stored event as the subscription world's record.
pub(crate) fn event(e: RecordedEvent) -> types::Event {
    types::Event {
        sequence: e.sequence as u64,
        stream_id: e.stream_id,
        stream_version: e.stream_version,
        event_type: e.event_type,
        data: e.data,
        metadata: e.metadata,
        tenant: e.tenant,
        timestamp: e.timestamp,
    }
}

impl From<exports::Descriptor> for SubscriptionDescriptor {
    fn from(d: exports::Descriptor) -> Self {
        Self {
            name: d.name,
            version: d.version,
            event_types: d.event_types,
            start: match d.start {
                types::StartPosition::Beginning => StartPosition::Beginning,
                types::StartPosition::Now => StartPosition::Now,
                types::StartPosition::AfterSequence(s) => {
                    StartPosition::AfterSequence(i64::try_from(s).unwrap_or(i64::MAX))
                }
                types::StartPosition::AtTime(t) => StartPosition::AtTime(t),
            },
            effects_during_catch_up: d.effects_during_catch_up,
        }
    }
}

/// The guest's own error from `handle`.
pub(crate) fn guest_error(e: exports::GuestError) -> (String, Option<i64>) {
    (
        e.message,
        e.event_sequence.and_then(|s| i64::try_from(s).ok()),
    )
}

/// A compiled, validated subscription component.
#[derive(Clone)]
pub struct LoadedSubscription {
    pub(crate) pre: SubscriberPre<HostState>,
    /// What the component says it is.
    pub descriptor: SubscriptionDescriptor,
    /// Hex SHA-256 of the wasm bytes.
    pub sha256: String,
    /// Whether the compiled artifact came from the cache.
    pub from_cache: bool,
    /// Time spent compiling (or loading the artifact) and validating.
    pub load_time: std::time::Duration,
    pub(crate) limits: super::Limits,
}

/// A subscription instance with its sandbox, called a page at a time.
pub struct Subscriber {
    sandbox: super::sandbox::Sandbox<Bindings>,
}

impl Subscriber {
    /// A subscriber for `loaded`, reported as `component` in logs and errors.
    pub fn new(loaded: &LoadedSubscription, component: String) -> Self {
        Self {
            sandbox: super::sandbox::Sandbox::new(
                loaded.pre.instance_pre().clone(),
                component,
                loaded.limits.clone(),
                |store, instance| Bindings::new(store, instance),
            ),
        }
    }

    /// Asks the component what it is.
    pub fn describe(&mut self) -> Result<SubscriptionDescriptor, super::RuntimeError> {
        let d = self.sandbox.call("describe", None, |store, b| {
            b.refract_subscription_subscription().call_describe(store)
        })?;
        Ok(d.into())
    }

    /// Hands the page to `handle`, with `host` answering its imports for the call.
    pub fn handle(
        &mut self,
        page: &[RecordedEvent],
        host: Box<dyn SubscriberHost>,
    ) -> Result<(), super::RuntimeError> {
        let events: Vec<types::Event> = page.iter().cloned().map(event).collect();
        let range = page
            .first()
            .zip(page.last())
            .map(|(a, b)| (a.sequence, b.sequence));
        let out = self.sandbox.call_with(host, "handle", range, |store, b| {
            b.refract_subscription_subscription()
                .call_handle(store, &events)
        })?;
        out.map_err(|e| {
            let (message, event_sequence) = guest_error(e);
            self.sandbox.guest_error(message, event_sequence)
        })
    }
}

use super::loaded::Loaded;

impl super::Runtime {
    /// Loads a component of either kind, told apart by the interface it exports.
    pub fn load_any(&self, wasm: &[u8]) -> Result<Loaded, super::RuntimeError> {
        let started = std::time::Instant::now();
        let (component, sha256, from_cache) = self.compile_checked(wasm)?;
        let (engine, linker) = self.parts();
        let ty = component.component_type();
        if ty.get_export(engine, SUBSCRIPTION_EXPORT).is_none() {
            return self
                .link_projection(&component, sha256, from_cache, started)
                .map(Loaded::Projection);
        }
        let wrong = |e: wasmtime::Error| super::RuntimeError::WrongWorld(format!("{e:#}"));
        let pre = SubscriberPre::new(linker.instantiate_pre(&component).map_err(wrong)?)
            .map_err(wrong)?;
        let mut loaded = LoadedSubscription {
            pre,
            descriptor: SubscriptionDescriptor {
                name: String::new(),
                version: 0,
                event_types: Vec::new(),
                start: StartPosition::Beginning,
                effects_during_catch_up: false,
            },
            sha256,
            from_cache,
            load_time: std::time::Duration::ZERO,
            limits: self.limits().clone(),
        };
        let label = format!("sha256:{}", &loaded.sha256[..12]);
        loaded.descriptor = Subscriber::new(&loaded, label).describe()?;
        let d = &loaded.descriptor;
        super::types::validate_identity(&d.name, d.version, &d.event_types)
            .map_err(super::RuntimeError::BadDescriptor)?;
        loaded.load_time = started.elapsed();
        Ok(Loaded::Subscription(loaded))
    }
}
