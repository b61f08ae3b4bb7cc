//! Tells a webhook when a help-desk incident (seed 001) is resolved.
//!
//! On each `IncidentResolved` it queues one JSON message in the outbox, to the URL of
//! its `webhook_url` setting (`[components.incident-notifier.settings]` in the daemon's
//! config). The message's key is the incident's stream id + `/resolved`, so an
//! incident resolved twice, or a replay, still sends one message.
//!
//! It starts from the beginning (the default): deployed on a store with history, it
//! sends one message for each incident already resolved.

use refract_guest::Envelope;
use refract_guest::subscription::{Ctx, Subscription};
use serde::{Deserialize, Serialize};

/// The setting naming where messages go.
pub const WEBHOOK_URL: &str = "webhook_url";

/// The help-desk events handled; each variant name is an event type.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub enum IncidentEvent {
    /// An agent resolved the incident.
    IncidentResolved {
        /// How it was resolved.
        resolution: String,
        /// Who resolved it.
        resolved_by: String,
    },
}

/// The message sent for a resolved incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedMessage {
    /// The incident's id: its stream id.
    pub incident_id: String,
    /// How it was resolved.
    pub resolution: String,
    /// Who resolved it.
    pub resolved_by: String,
    /// When the event was recorded: RFC 3339, UTC, microseconds (`2023-11-14T22:13:20.000001Z`).
    pub resolved_at: String,
}

/// The key of an incident's message: one message per incident.
pub fn message_key(incident_id: &str) -> String {
    format!("{incident_id}/resolved")
}

/// The `incident-notifier` subscription, version 1.
#[derive(Debug, Clone, Copy, Default)]
pub struct IncidentNotifier;

impl Subscription for IncidentNotifier {
    type Event = IncidentEvent;
    const NAME: &'static str = "incident-notifier";
    const VERSION: u32 = 1;

    fn handle(ctx: &mut Ctx<'_>, event: &Envelope<IncidentEvent>) -> Result<(), String> {
        let IncidentEvent::IncidentResolved {
            resolution,
            resolved_by,
        } = &event.event;
        let url = ctx
            .setting(WEBHOOK_URL)
            .filter(|url| !url.is_empty())
            .ok_or_else(|| {
                format!(
                    "the setting {WEBHOOK_URL} is not set: give it in \
                     [components.{}.settings] of the daemon's config",
                    Self::NAME
                )
            })?;
        let message = ResolvedMessage {
            incident_id: event.stream_id.clone(),
            resolution: resolution.clone(),
            resolved_by: resolved_by.clone(),
            resolved_at: rfc3339(event.timestamp),
        };
        ctx.send(&url, &message, &message_key(&event.stream_id))
    }
}

refract_guest::export_subscription!(IncidentNotifier);

/// Formats microseconds since the Unix epoch as RFC 3339 in UTC, e.g.
/// `2023-11-14T22:13:20.000001Z`.
pub fn rfc3339(micros: i64) -> String {
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{fraction:06}Z")
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of the 400-year era
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the year from March 1st
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests;
