//! A subscription that sends one outbox message per `OutboxProbe` event to the URL
//! of its `webhook_url` setting, padded to the event's `pad_bytes` (a 40 MiB body
//! tries the outbox's size limit). Its send errors are returned as they are.

use refract_guest::Envelope;
use refract_guest::subscription::{Ctx, Subscription};
use serde::Deserialize;
use serde_json::json;

/// The events handled.
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub enum Probe {
    OutboxProbe {
        /// Bytes of padding in the message body.
        #[serde(default)]
        pad_bytes: usize,
    },
}

/// The subscription.
pub struct OutboxProbe;

impl Subscription for OutboxProbe {
    type Event = Probe;
    const NAME: &'static str = "outbox-probe";
    const VERSION: u32 = 1;

    fn handle(ctx: &mut Ctx<'_>, event: &Envelope<Probe>) -> Result<(), String> {
        let Probe::OutboxProbe { pad_bytes } = &event.event;
        let url = ctx
            .setting("webhook_url")
            .ok_or("the setting webhook_url is not set")?;
        let body = json!({
            "stream": event.stream_id,
            "sequence": event.sequence,
            "pad": "x".repeat(*pad_bytes),
        });
        ctx.send(
            &url,
            &body,
            &format!("{}/{}", event.stream_id, event.sequence),
        )
    }
}

refract_guest::export_subscription!(OutboxProbe);
