//! WIT `refract:subscription@1.0.0`: its bindings, its host imports (the shared
//! ones of 1.1.0, whose types it uses), and its answer to `describe` in 1.1.0's
//! terms (1.0.0 has no settings), from there converted into the runtime's.

use super::subscriber_v1_1::impl_subscription_host;

super::bindings::bind_wit!(
    subscriber "1.0.0" at "../wit/subscription", types of crate::runtime::subscriber_v1_1
);

impl_subscription_host!(bindings::refract::subscription::host {});

/// 1.0.0 has no settings.
fn settings(_: &types::Descriptor) -> types::Settings {
    types::Settings {
        max_page_size: None,
    }
}
