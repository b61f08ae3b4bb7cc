//! What differs between the WIT versions of `refract:subscription` refract runs, in
//! one place: the export a component of each version has, its linked form, and its
//! calls, answered in the runtime's types. Both versions' host imports are on the
//! one linker and answer through the same
//! [`SubscriberHost`](super::subscription_types::SubscriberHost).

use wasmtime::Store;
use wasmtime::component::{Instance, Linker};

use super::state::HostState;
use super::subscription_types::SubscriptionDescriptor;
use super::types::WitVersion;
use super::versions::linked;
use super::{subscriber_v1_0 as v1_0, subscriber_v1_1 as v1_1};
use crate::event::Event;

/// The name under which a 1.1.0 subscription exports its calls.
pub const SUBSCRIPTION_EXPORT_V1_1: &str = v1_1::EXPORT;
/// The name under which a 1.0.0 subscription exports its calls.
pub const SUBSCRIPTION_EXPORT_V1_0: &str = v1_0::EXPORT;

/// Adds the subscription host imports of every version to a linker.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    v1_0::add_to_linker(linker)?;
    v1_1::add_to_linker(linker)
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

linked! {
    /// A component linked as a subscriber of one WIT version, ready to instantiate.
    SubscriberPre {
        V1_0: v1_0::SubscriberPre<HostState>,
        V1_1: v1_1::SubscriberPre<HostState>,
    }
}

/// An instance's typed bindings.
pub(crate) enum Bindings {
    V1_0(v1_0::Subscriber),
    V1_1(v1_1::Subscriber),
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
            other => wasmtime::bail!("refract:subscription has no WIT version {other}"),
        })
    }

    /// `describe`, and (1.1.0) `describe-settings`, as the runtime's descriptor of a
    /// guest built against `version`.
    pub fn describe(
        &self,
        store: &mut Store<HostState>,
        version: WitVersion,
    ) -> wasmtime::Result<SubscriptionDescriptor> {
        let described = match self {
            Self::V1_0(b) => v1_0::describe(b, store)?,
            Self::V1_1(b) => v1_1::describe(b, store)?,
        };
        Ok(SubscriptionDescriptor::from_wit(described, version))
    }

    /// `handle` of one page; the guest's own error as its message and the event
    /// it names.
    pub fn handle(
        &self,
        store: &mut Store<HostState>,
        page: &[v1_1::types::Event],
    ) -> wasmtime::Result<Result<(), (String, Option<i64>)>> {
        let out = match self {
            Self::V1_0(b) => b
                .refract_subscription_subscription()
                .call_handle(store, page)?,
            Self::V1_1(b) => b
                .refract_subscription_subscription()
                .call_handle(store, page)?,
        };
        Ok(out.map_err(v1_1::guest_error))
    }
}

/// A page as the subscription world's records. The guest is handed copies: the
/// daemon keeps the page (to narrow it on a failure).
pub(crate) fn wit_page(page: &[Event]) -> Vec<v1_1::types::Event> {
    page.iter().cloned().map(v1_1::types::Event::from).collect()
}
