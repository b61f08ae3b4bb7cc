//! A subscription (WIT 1.1.0, at most 10 events per page) whose emits the tests of
//! issue 10 steer through the setting `mode` (see `probe.rs`).

use refract_guest::Envelope;
use refract_guest::subscription::{Ctx, Subscription};

pub mod probe;

/// The subscription.
pub struct EmitProbe;

impl Subscription for EmitProbe {
    type Event = probe::Poked;
    const NAME: &'static str = "emit-probe";
    const VERSION: u32 = 1;
    const MAX_PAGE_SIZE: Option<u32> = Some(10);

    fn handle(ctx: &mut Ctx<'_>, event: &Envelope<probe::Poked>) -> Result<(), String> {
        probe::handle(ctx, event)
    }
}

// Exported by hand (as `export_subscription!` does) to fail whole pages in the mode
// `fail-last-of-many`, which a per-event `handle` cannot.
#[cfg(target_arch = "wasm32")]
mod export {
    use refract_guest::subscription::glue::bindings::v1_1::refract::subscription::host;
    use refract_guest::subscription::glue::{self, v1_1, wit};

    struct Export;

    impl v1_1::Guest for Export {
        fn describe() -> wit::Descriptor {
            glue::describe::<super::EmitProbe>(&v1_1::HOST)
        }

        fn describe_settings() -> wit::Settings {
            glue::describe_settings::<super::EmitProbe>()
        }

        fn handle(page: Vec<wit::Event>) -> Result<(), wit::GuestError> {
            let mode = host::setting("mode");
            if page.len() > 1 && mode.as_deref() == Some("fail-last-of-many") {
                return Err(wit::GuestError {
                    message: format!("a page of {} events fails at its last", page.len()),
                    event_sequence: page.last().map(|e| e.sequence),
                });
            }
            glue::handle::<super::EmitProbe>(&v1_1::HOST, page)
        }
    }

    glue::bindings::v1_1::export!(
        Export with_types_in refract_guest::subscription::glue::bindings::v1_1
    );
}

#[cfg(not(target_arch = "wasm32"))]
refract_guest::export_subscription!(EmitProbe);
