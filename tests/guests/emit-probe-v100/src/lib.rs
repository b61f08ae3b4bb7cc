//! The emit probe exported as WIT `refract:subscription@1.0.0` (under the name
//! `emit-probe-legacy`): a guest built for an older host must keep running.

use refract_guest::Envelope;
use refract_guest::subscription::{Ctx, Subscription};

#[path = "../../emit-probe/src/probe.rs"]
mod probe;

/// The subscription.
pub struct LegacyProbe;

impl Subscription for LegacyProbe {
    type Event = probe::Poked;
    const NAME: &'static str = "emit-probe-legacy";
    const VERSION: u32 = 1;

    fn handle(ctx: &mut Ctx<'_>, event: &Envelope<probe::Poked>) -> Result<(), String> {
        probe::handle(ctx, event)
    }
}

refract_guest::export_subscription!(LegacyProbe, wit = "1.0.0");
