//! `incident-notifier` version 2, for the catch-up test: deployed from the
//! beginning beside version 1, it must send nothing for the incidents version 1
//! already announced (its sends are held until it passes version 1's position), and
//! announce the later ones. Its message keys differ from version 1's on purpose, so
//! the outbox's own deduplication cannot hide a send that should have been held.

use refract_guest::Envelope;
use refract_guest::subscription::{Ctx, Subscription};
use serde::Deserialize;
use serde_json::json;

/// The events handled.
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub enum IncidentEvent {
    IncidentResolved { resolution: String },
}

/// The subscription.
pub struct IncidentNotifierV2;

impl Subscription for IncidentNotifierV2 {
    type Event = IncidentEvent;
    const NAME: &'static str = "incident-notifier";
    const VERSION: u32 = 2;

    fn handle(ctx: &mut Ctx<'_>, event: &Envelope<IncidentEvent>) -> Result<(), String> {
        let IncidentEvent::IncidentResolved { resolution } = &event.event;
        let url = ctx
            .setting("webhook_url")
            .ok_or("the setting webhook_url is not set")?;
        let body =
            json!({ "incident_id": event.stream_id, "resolution": resolution, "notifier": 2 });
        ctx.send(&url, &body, &format!("{}/resolved-v2", event.stream_id))
    }
}

refract_guest::export_subscription!(IncidentNotifierV2);
