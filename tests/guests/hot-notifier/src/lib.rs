//! A subscription that starts hot (`Start::Now`): it must handle only the events
//! appended after it was deployed, never the history before.

use refract_guest::Envelope;
use refract_guest::subscription::{Ctx, Start, Subscription};
use serde::Deserialize;
use serde_json::json;

/// The events handled (any payload).
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub enum Logged {
    IncidentLogged {},
}

/// The subscription.
pub struct HotNotifier;

impl Subscription for HotNotifier {
    type Event = Logged;
    const NAME: &'static str = "hot-notifier";
    const VERSION: u32 = 1;
    const START: Start = Start::Now;

    fn handle(ctx: &mut Ctx<'_>, event: &Envelope<Logged>) -> Result<(), String> {
        let url = ctx
            .setting("webhook_url")
            .ok_or("the setting webhook_url is not set")?;
        let body = json!({ "incident_id": event.stream_id, "logged_at": event.sequence });
        ctx.send(&url, &body, &format!("{}/logged", event.stream_id))
    }
}

refract_guest::export_subscription!(HotNotifier);
