//! Version 2 of the emit probe, exported as WIT `refract:subscription@1.0.0`: a guest
//! built for an older host must keep running (and, deployed beside version 1, it
//! serves the standby tests).

use refract_guest::Envelope;
use refract_guest::subscription::{Ctx, Subscription};

#[path = "../../emit-probe/src/probe.rs"]
mod probe;

/// The subscription.
pub struct LegacyProbe;

impl Subscription for LegacyProbe {
    type Event = probe::Poked;
    const NAME: &'static str = "emit-probe";
    const VERSION: u32 = 2;

    fn handle(ctx: &mut Ctx<'_>, event: &Envelope<probe::Poked>) -> Result<(), String> {
        probe::handle(ctx, event)
    }
}

refract_guest::export_subscription!(LegacyProbe, wit = "1.0.0");
