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

refract_guest::export_subscription!(EmitProbe);
