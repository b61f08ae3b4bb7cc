//! The WIT versions of `refract:subscription` the host runs, side by side: 1.0.0 and
//! 1.1.0 (which only adds `settings`, `describe-settings` and `read-stream-page`), so
//! 1.0.0's bindings use 1.1.0's types. Both versions' host imports are on the one
//! linker and answer through the same [`SubscriberHost`].

use wasmtime::Store;
use wasmtime::component::{HasSelf, Instance, InstancePre, Linker};

use super::state::HostState;
use super::subscriber::{EmittedEvent, SubscriberHost};
use super::types::WitVersion;
use crate::identity::ExpectedVersion;
use crate::store::RecordedEvent;

mod v1_1 {
    wasmtime::component::bindgen!({
        world: "subscriber",
        path: "../wit/subscription-1.1.0",
    });
}

mod v1_0 {
    wasmtime::component::bindgen!({
        world: "subscriber",
        path: "../wit/subscription",
        with: { "refract:subscription/types@1.0.0": super::v1_1::refract::subscription::types },
    });
}

pub(crate) use v1_1::refract::subscription::types;

/// The name under which a 1.1.0 subscription exports its calls.
pub const SUBSCRIPTION_EXPORT_V1_1: &str = "refract:subscription/subscription@1.1.0";
/// The name under which a 1.0.0 subscription exports its calls.
pub const SUBSCRIPTION_EXPORT_V1_0: &str = "refract:subscription/subscription@1.0.0";
/// The name under which a 1.0.0 guest imports the types interface.
const TYPES_IMPORT_V1_0: &str = "refract:subscription/types@1.0.0";

/// Adds the subscription host imports of every version to a linker.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    v1_0::Subscriber::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    // Its types are 1.1.0's (see `with`), so its bindings do not define the
    // (function-less) instance under 1.0.0's name.
    linker.instance(TYPES_IMPORT_V1_0)?;
    v1_1::Subscriber::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
}

/// The WIT version a component exports, by its exports; none if not a subscription.
pub(crate) fn exported_version(
    engine: &wasmtime::Engine,
    ty: &wasmtime::component::types::Component,
) -> Option<WitVersion> {
    if ty.get_export(engine, SUBSCRIPTION_EXPORT_V1_1).is_some() {
        Some(WitVersion::V1_1)
    } else if ty.get_export(engine, SUBSCRIPTION_EXPORT_V1_0).is_some() {
        Some(WitVersion::V1_0)
    } else {
        None
    }
}

/// A component linked as a subscriber of one WIT version, ready to instantiate.
#[derive(Clone)]
pub(crate) enum SubscriberPre {
    V1_0(v1_0::SubscriberPre<HostState>),
    V1_1(v1_1::SubscriberPre<HostState>),
}

/// An instance's typed bindings.
pub(crate) enum Bindings {
    V1_0(v1_0::Subscriber),
    V1_1(v1_1::Subscriber),
}

impl SubscriberPre {
    /// Checks the linked component against `version`'s world.
    pub fn new(version: WitVersion, pre: InstancePre<HostState>) -> wasmtime::Result<Self> {
        Ok(match version {
            WitVersion::V1_0 => Self::V1_0(v1_0::SubscriberPre::new(pre)?),
            WitVersion::V1_1 => Self::V1_1(v1_1::SubscriberPre::new(pre)?),
        })
    }

    /// The WIT version the component was built against.
    pub fn version(&self) -> WitVersion {
        match self {
            Self::V1_0(_) => WitVersion::V1_0,
            Self::V1_1(_) => WitVersion::V1_1,
        }
    }

    /// The untyped pre-instance.
    pub fn instance_pre(&self) -> &InstancePre<HostState> {
        match self {
            Self::V1_0(p) => p.instance_pre(),
            Self::V1_1(p) => p.instance_pre(),
        }
    }
}

impl Bindings {
    /// The typed bindings of `instance`, of `version`.
    pub fn new(
        version: WitVersion,
        store: &mut Store<HostState>,
        instance: &Instance,
    ) -> wasmtime::Result<Self> {
        Ok(match version {
            WitVersion::V1_0 => Self::V1_0(v1_0::Subscriber::new(store, instance)?),
            WitVersion::V1_1 => Self::V1_1(v1_1::Subscriber::new(store, instance)?),
        })
    }

    /// `describe`, and (1.1.0) `describe-settings`; 1.0.0 has no settings.
    pub fn describe(
        &self,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<(types::Descriptor, types::Settings)> {
        match self {
            Self::V1_0(b) => {
                let d = b.refract_subscription_subscription().call_describe(store)?;
                Ok((
                    d,
                    types::Settings {
                        max_page_size: None,
                    },
                ))
            }
            Self::V1_1(b) => {
                let calls = b.refract_subscription_subscription();
                let d = calls.call_describe(&mut *store)?;
                Ok((d, calls.call_describe_settings(store)?))
            }
        }
    }

    /// `handle` of one page.
    pub fn handle(
        &self,
        store: &mut Store<HostState>,
        page: &[types::Event],
    ) -> wasmtime::Result<Result<(), types::GuestError>> {
        match self {
            Self::V1_0(b) => b
                .refract_subscription_subscription()
                .call_handle(store, page),
            Self::V1_1(b) => b
                .refract_subscription_subscription()
                .call_handle(store, page),
        }
    }
}

/// The guest's expectation (WIT `expected-version`, the same in every version) as
/// the host's one type.
impl From<types::ExpectedVersion> for ExpectedVersion {
    fn from(e: types::ExpectedVersion) -> Self {
        match e {
            types::ExpectedVersion::Any => Self::Any,
            types::ExpectedVersion::NoStream => Self::NoStream,
            types::ExpectedVersion::Exact(v) => Self::Exact(v),
        }
    }
}

const OUTSIDE_A_PAGE: &str = "only possible while handling a page";

impl types::Host for HostState {}

/// The imports both versions share, converted from the (shared) generated types.
impl HostState {
    fn sub_emit(
        &mut self,
        stream_id: String,
        expected: types::ExpectedVersion,
        events: Vec<types::NewEvent>,
        idempotency_key: Option<String>,
    ) -> Result<u64, String> {
        let events = events
            .into_iter()
            .map(|e| EmittedEvent {
                event_type: e.event_type,
                data: e.data,
                metadata: e.metadata,
            })
            .collect();
        self.page_host("emit")?
            .emit(stream_id, expected.into(), events, idempotency_key)
    }

    fn sub_read_stream(&mut self, stream_id: String) -> Result<types::StreamState, String> {
        let (version, events) = self.page_host("read-stream")?.read_stream(stream_id)?;
        Ok(stream_state(version, events))
    }

    fn page_host(&mut self, call: &str) -> Result<&mut Box<dyn SubscriberHost>, String> {
        self.subscriber
            .as_mut()
            .ok_or_else(|| format!("{call} is {OUTSIDE_A_PAGE}"))
    }
}

fn stream_state(version: u64, events: Vec<RecordedEvent>) -> types::StreamState {
    types::StreamState {
        version,
        events: events.into_iter().map(event).collect(),
    }
}

/// Implements one version's `host` trait with the shared functions above; `$more`
/// are the version's own functions.
macro_rules! impl_subscription_host {
    ($($host:ident)::+ { $($more:tt)* }) => {
        impl $($host)::+::Host for HostState {
            fn log(&mut self, level: $($host)::+::Level, message: String) {
                use $($host)::+::Level as L;
                let level = match level {
                    L::Trace => tracing::Level::TRACE,
                    L::Debug => tracing::Level::DEBUG,
                    L::Info => tracing::Level::INFO,
                    L::Warn => tracing::Level::WARN,
                    L::Error => tracing::Level::ERROR,
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
                self.sub_emit(stream_id, expected, events, idempotency_key)
            }

            fn read_stream(&mut self, stream_id: String) -> Result<types::StreamState, String> {
                self.sub_read_stream(stream_id)
            }

            fn setting(&mut self, key: String) -> Option<String> {
                self.subscriber.as_mut().and_then(|h| h.setting(key))
            }

            fn send(&mut self, url: String, body: String, key: String) -> Result<(), String> {
                self.page_host("send")?.send(url, body, key)
            }

            $($more)*
        }
    };
}

impl_subscription_host!(v1_0::refract::subscription::host {});

impl_subscription_host!(v1_1::refract::subscription::host {
    fn read_stream_page(
        &mut self,
        stream_id: String,
        from_version: u64,
        limit: u32,
    ) -> Result<types::StreamState, String> {
        let (version, events) = self
            .page_host("read-stream-page")?
            .read_stream_page(stream_id, from_version, limit)?;
        Ok(stream_state(version, events))
    }
});

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
