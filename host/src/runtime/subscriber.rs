//! A running subscription (WIT `refract:subscription@1.0.0` and `@1.1.0`, bound in
//! `subscriber_v1_*.rs`): one sandboxed instance, handed a page at a time. During
//! one `handle` call the daemon lends the instance a [`SubscriberHost`] that answers
//! `emit`, `read-stream`, `read-stream-page`, `send` and `setting`; the runtime
//! itself knows nothing of the store.

use super::error::RuntimeError;
use super::loaded::LoadedSubscription;
use super::sandbox::{Sandbox, Sandboxed, Spot};
use super::subscriber_versions::{Bindings, wit_page};
use super::subscription_types::{SubscriberHost, SubscriptionDescriptor};
use super::types::{DESCRIBE_FUEL, WitVersion};
use crate::event::Event;

/// A subscription instance with its sandbox, called a page at a time.
pub struct Subscriber {
    sandbox: Sandbox<Bindings>,
}

impl Subscriber {
    /// A subscriber for `loaded`, reported as `component` in logs and errors.
    pub fn new(loaded: &LoadedSubscription, component: String) -> Self {
        let version = loaded.pre.version();
        let mut sandbox = Sandbox::new(
            loaded.pre.instance_pre().clone(),
            component,
            loaded.limits.clone(),
            move |store, instance| Bindings::new(version, store, instance),
        );
        sandbox.set_slots(loaded.slots.clone());
        Self { sandbox }
    }

    /// Asks the component (built against `version`) what it is.
    pub fn describe(
        &mut self,
        version: WitVersion,
    ) -> Result<SubscriptionDescriptor, RuntimeError> {
        self.sandbox.call("describe", None, |store, b| {
            store.set_hostcall_fuel(DESCRIBE_FUEL);
            b.describe(store, version)
        })
    }

    /// Hands the page to `handle`, with `host` answering its imports for the call.
    pub fn handle(
        &mut self,
        page: &[Event],
        host: Box<dyn SubscriberHost>,
    ) -> Result<(), RuntimeError> {
        let events = wit_page(page);
        let spot = Spot::of(page);
        let out = self
            .sandbox
            .call_with(host, "handle", spot, |store, b| b.handle(store, &events))?;
        out.map_err(|(message, event_sequence)| self.sandbox.guest_error(message, event_sequence))
    }
}

impl Sandboxed for Subscriber {
    type Bindings = Bindings;

    fn sandbox_mut(&mut self) -> &mut Sandbox<Bindings> {
        &mut self.sandbox
    }
}
