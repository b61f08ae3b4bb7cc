//! Subscriptions (WIT `refract:subscription@1.0.0` and `@1.1.0`, bound in
//! `subscriber_wit.rs`). During one `handle` call the daemon lends the instance a
//! [`SubscriberHost`] that answers `emit`, `read-stream`, `read-stream-page`, `send`
//! and `setting`; the runtime itself knows nothing of the store.

use wasmtime::component::Linker;

use super::state::HostState;
use crate::identity::ExpectedVersion;
use crate::store::RecordedEvent;

use super::subscriber_wit::{Bindings, SubscriberPre, event, types};
use super::types::WitVersion;

pub use super::subscriber_wit::{SUBSCRIPTION_EXPORT_V1_0, SUBSCRIPTION_EXPORT_V1_1};

/// Adds the subscription host imports (every WIT version) to a linker.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    super::subscriber_wit::add_to_linker(linker)
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
    /// The most events it takes per `handle` call (1.1.0's settings), if it says.
    pub max_page_size: Option<u32>,
    /// The WIT version it was built against.
    pub wit_version: WitVersion,
}

impl SubscriptionDescriptor {
    /// Events per page for it: `configured`, or its smaller maximum (at least 1).
    pub fn page_size(&self, configured: usize) -> usize {
        let max = self.max_page_size.map_or(usize::MAX, |m| m as usize);
        configured.min(max).max(1)
    }
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
        expected: ExpectedVersion,
        events: Vec<EmittedEvent>,
        idempotency_key: Option<String>,
    ) -> Result<u64, String>;

    /// The stream's version and events, this page's emits included (refused past
    /// the host's cap on a whole-stream read).
    fn read_stream(&mut self, stream: String) -> Result<(u64, Vec<RecordedEvent>), String>;

    /// The stream's version and at most `limit` of its events from `from_version`
    /// on, this page's emits included.
    fn read_stream_page(
        &mut self,
        stream: String,
        from_version: u64,
        limit: u32,
    ) -> Result<(u64, Vec<RecordedEvent>), String>;

    /// Queues a message for the outbox.
    fn send(&mut self, url: String, body: String, key: String) -> Result<(), String>;

    /// A setting of this component from the daemon's config.
    fn setting(&mut self, key: String) -> Option<String>;
}

impl SubscriptionDescriptor {
    /// The runtime's descriptor of a guest of `wit_version`, from what it said.
    fn from_wit(d: types::Descriptor, settings: types::Settings, wit_version: WitVersion) -> Self {
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
            max_page_size: settings.max_page_size,
            wit_version,
        }
    }
}

/// The guest's own error from `handle`.
pub(crate) fn guest_error(e: types::GuestError) -> (String, Option<i64>) {
    (
        e.message,
        e.event_sequence.and_then(|s| i64::try_from(s).ok()),
    )
}

/// A compiled, validated subscription component.
#[derive(Clone)]
pub struct LoadedSubscription {
    pub(crate) pre: SubscriberPre,
    /// What the component says it is.
    pub descriptor: SubscriptionDescriptor,
    /// Hex SHA-256 of the wasm bytes.
    pub sha256: String,
    /// Whether the compiled artifact came from the cache.
    pub from_cache: bool,
    /// Time spent compiling (or loading the artifact) and validating.
    pub load_time: std::time::Duration,
    pub(crate) limits: super::Limits,
    /// Its team's instance slots (none: unbudgeted).
    pub(crate) slots: Option<super::InstanceSlots>,
}

/// A subscription instance with its sandbox, called a page at a time.
pub struct Subscriber {
    sandbox: super::sandbox::Sandbox<Bindings>,
}

impl Subscriber {
    /// A subscriber for `loaded`, reported as `component` in logs and errors.
    pub fn new(loaded: &LoadedSubscription, component: String) -> Self {
        let version = loaded.pre.version();
        let mut sandbox = super::sandbox::Sandbox::new(
            loaded.pre.instance_pre().clone(),
            component,
            loaded.limits.clone(),
            move |store, instance| Bindings::new(version, store, instance),
        );
        sandbox.set_slots(loaded.slots.clone());
        Self { sandbox }
    }

    /// The slots its instances are made under (its team's), if budgeted.
    pub fn slots(&self) -> Option<super::InstanceSlots> {
        self.sandbox.slots().cloned()
    }

    /// Gives it the slot its next instance lives under.
    pub fn admit(&mut self, slot: super::Slot) {
        self.sandbox.admit(slot);
    }

    /// Drops its instance and frees the slot (the next call makes a fresh one).
    pub fn release(&mut self) {
        self.sandbox.release();
    }

    /// Asks the component (built against `version`) what it is.
    pub fn describe(
        &mut self,
        version: WitVersion,
    ) -> Result<SubscriptionDescriptor, super::RuntimeError> {
        let (d, settings) = self.sandbox.call("describe", None, |store, b| {
            store.set_hostcall_fuel(super::types::DESCRIBE_FUEL);
            b.describe(store)
        })?;
        Ok(SubscriptionDescriptor::from_wit(d, settings, version))
    }

    /// Hands the page to `handle`, with `host` answering its imports for the call.
    pub fn handle(
        &mut self,
        page: &[RecordedEvent],
        host: Box<dyn SubscriberHost>,
    ) -> Result<(), super::RuntimeError> {
        let events: Vec<types::Event> = page.iter().cloned().map(event).collect();
        let spot = super::sandbox::Spot::of(page);
        let out = self
            .sandbox
            .call_with(host, "handle", spot, |store, b| b.handle(store, &events))?;
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
        self.load_any_under(wasm, self.limits().clone())
    }

    /// Like [`load_any`](Self::load_any), with `describe` run under `limits` (the
    /// deploying team's) and the component set to run under them.
    pub fn load_any_under(
        &self,
        wasm: &[u8],
        limits: super::Limits,
    ) -> Result<Loaded, super::RuntimeError> {
        let started = std::time::Instant::now();
        let (component, sha256, from_cache) = self.compile_checked(wasm)?;
        let (engine, linker) = self.parts();
        let ty = component.component_type();
        let Some(version) = super::subscriber_wit::exported_version(engine, &ty) else {
            return self
                .link_projection(&component, sha256, from_cache, started, limits)
                .map(Loaded::Projection);
        };
        let wrong = |e: wasmtime::Error| super::RuntimeError::WrongWorld(format!("{e:#}"));
        let pre = SubscriberPre::new(version, linker.instantiate_pre(&component).map_err(wrong)?)
            .map_err(wrong)?;
        let mut loaded = LoadedSubscription {
            pre,
            descriptor: SubscriptionDescriptor {
                name: String::new(),
                version: 0,
                event_types: Vec::new(),
                start: StartPosition::Beginning,
                effects_during_catch_up: false,
                max_page_size: None,
                wit_version: version,
            },
            sha256,
            from_cache,
            load_time: std::time::Duration::ZERO,
            limits,
            slots: None,
        };
        let label = format!("sha256:{}", &loaded.sha256[..12]);
        loaded.descriptor =
            self.describing(|| Subscriber::new(&loaded, label.clone()).describe(version))?;
        let d = &loaded.descriptor;
        if d.max_page_size == Some(0) {
            return Err(super::RuntimeError::BadDescriptor(
                "max-page-size is 0; it must be at least 1 (or none)".into(),
            ));
        }
        super::types::validate_identity(&d.name, d.version, &d.event_types)
            .map_err(super::RuntimeError::BadDescriptor)?;
        loaded.load_time = started.elapsed();
        Ok(Loaded::Subscription(loaded))
    }
}
