//! WIT `refract:subscription@1.0.0`: its bindings, its host imports (the shared
//! ones of 1.1.0, whose types it uses), and its answer to `describe` in 1.1.0's
//! terms (1.0.0 has no settings), from there converted into the runtime's.

use wasmtime::Store;
use wasmtime::component::{HasSelf, Linker};

use super::state::HostState;
use super::subscriber_v1_1::{impl_subscription_host, types};

mod bindings {
    wasmtime::component::bindgen!({
        world: "subscriber",
        path: "../wit/subscription",
        // 1.1.0 only adds to 1.0.0's types: its bindings serve both.
        with: { "refract:subscription/types@1.0.0": crate::runtime::subscriber_v1_1::types },
    });
}

pub(crate) use bindings::{Subscriber, SubscriberPre};

/// The name under which a 1.0.0 subscription exports its calls.
pub const SUBSCRIPTION_EXPORT: &str = "refract:subscription/subscription@1.0.0";

/// The name under which a 1.0.0 guest imports the types interface.
const TYPES_IMPORT: &str = "refract:subscription/types@1.0.0";

/// Adds the 1.0.0 host imports to a linker.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    Subscriber::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    // Its types are 1.1.0's (see `with`), so its bindings do not define the
    // (function-less) instance under 1.0.0's name.
    linker.instance(TYPES_IMPORT)?;
    Ok(())
}

impl_subscription_host!(bindings::refract::subscription::host {});

/// Asks a 1.0.0 instance what it is, in 1.1.0's terms: 1.0.0 has no settings.
pub(crate) fn describe(
    subscriber: &Subscriber,
    store: &mut Store<HostState>,
) -> wasmtime::Result<(types::Descriptor, types::Settings)> {
    let d = subscriber
        .refract_subscription_subscription()
        .call_describe(store)?;
    Ok((
        d,
        types::Settings {
            max_page_size: None,
        },
    ))
}
