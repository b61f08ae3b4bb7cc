use refract_guest::Envelope;
use refract_guest::subscription::testing::World;
use refract_guest::subscription::{Ctx, Subscription};
use refract_guest::testing::BASE_TIMESTAMP;
use serde_json::json;

use crate::{IncidentEvent, IncidentNotifier, ResolvedMessage, rfc3339};

const URL: &str = "https://hooks.example.com/incidents";

fn world() -> World {
    let mut world = World::new();
    world.setting("webhook_url", URL);
    world
}

fn logged(world: &mut World, incident: &str) {
    world.given(
        incident,
        "IncidentLogged",
        json!({"customer_id": "c-1", "contact": {}, "description": "d", "logged_by": "a"}),
    );
}

fn resolved(world: &mut World, incident: &str, by: &str) {
    world.given(
        incident,
        "IncidentResolved",
        json!({"resolution": "Fixed", "resolved_by": by}),
    );
}

/// The notifier under another name: handles every event again, as a replay would.
struct Replay;

impl Subscription for Replay {
    type Event = IncidentEvent;
    const NAME: &'static str = "incident-notifier-replay";
    const VERSION: u32 = 1;

    fn handle(ctx: &mut Ctx<'_>, event: &Envelope<IncidentEvent>) -> Result<(), String> {
        IncidentNotifier::handle(ctx, event)
    }
}

#[test]
fn describes_itself() {
    let d = refract_guest::subscription::describe::<IncidentNotifier>();
    assert_eq!((d.name.as_str(), d.version), ("incident-notifier", 1));
    assert_eq!(d.event_types, ["IncidentResolved"]);
}

#[test]
fn one_message_per_resolved_incident() {
    let mut world = world();
    for i in 1..=3 {
        logged(&mut world, &format!("inc-{i}"));
    }
    resolved(&mut world, "inc-2", "agent-7"); // sequence 4
    resolved(&mut world, "inc-3", "agent-8"); // sequence 5
    world.run::<IncidentNotifier>().unwrap();

    let sent = world.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].url, URL);
    assert_eq!(sent[0].key, "inc-2/resolved");
    assert_eq!(
        sent[0].body,
        json!({
            "incident_id": "inc-2",
            "resolution": "Fixed",
            "resolved_by": "agent-7",
            "resolved_at": "2023-11-14T22:13:20.000004Z",
        })
    );
    let second: ResolvedMessage = serde_json::from_value(sent[1].body.clone()).unwrap();
    assert_eq!(
        (sent[1].key.as_str(), second.resolved_by.as_str()),
        ("inc-3/resolved", "agent-8")
    );
    assert_eq!(second.resolved_at, rfc3339(BASE_TIMESTAMP + 5));
    assert_eq!(world.events().len(), 5, "it appends nothing");
}

#[test]
fn other_events_send_nothing() {
    let mut world = world();
    logged(&mut world, "inc-1");
    world.given("inc-1", "IncidentClosed", json!({"closed_by": "a"}));
    world.given("inc-1", "IncidentResolvedLater", json!({}));
    world.run::<IncidentNotifier>().unwrap();
    assert!(world.sent().is_empty());
}

#[test]
fn keys_are_stable_across_resolutions_runs_and_replays() {
    let mut world = world();
    logged(&mut world, "inc-1");
    resolved(&mut world, "inc-1", "agent-1");
    world.run::<IncidentNotifier>().unwrap();
    world.run::<IncidentNotifier>().unwrap();
    resolved(&mut world, "inc-1", "agent-2"); // resolved again: same incident, same key
    world.run::<IncidentNotifier>().unwrap();
    world.run::<Replay>().unwrap();

    let sent = world.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].key, "inc-1/resolved");
    assert_eq!(sent[0].body["resolved_by"], "agent-1");
}

#[test]
fn a_missing_webhook_url_is_an_error_naming_it() {
    let mut world = World::new();
    logged(&mut world, "inc-1");
    resolved(&mut world, "inc-1", "agent-1");
    let error = world.run::<IncidentNotifier>().unwrap_err();
    assert_eq!(error.event_sequence, Some(2));
    assert!(error.message.contains("webhook_url"), "{error}");
    assert!(world.sent().is_empty());

    // Once configured, the retried page sends the message.
    world.setting("webhook_url", URL);
    world.run::<IncidentNotifier>().unwrap();
    assert_eq!(world.sent().len(), 1);
}

#[test]
fn an_empty_webhook_url_is_missing_too() {
    let mut world = World::new();
    world.setting("webhook_url", "");
    resolved(&mut world, "inc-1", "agent-1");
    let error = world.run::<IncidentNotifier>().unwrap_err();
    assert!(error.message.contains("webhook_url"), "{error}");
}

#[test]
fn a_malformed_resolution_fails_with_its_sequence() {
    let mut world = world();
    world.given("inc-1", "IncidentResolved", json!({"resolution": "Fixed"}));
    let error = world.run::<IncidentNotifier>().unwrap_err();
    assert_eq!(error.event_sequence, Some(1));
    assert!(error.message.contains("resolved_by"), "{error}");
}

#[test]
fn timestamps_are_rfc3339_utc_with_microseconds() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
    assert_eq!(rfc3339(BASE_TIMESTAMP), "2023-11-14T22:13:20.000000Z");
    assert_eq!(rfc3339(951_782_400_000_000), "2000-02-29T00:00:00.000000Z");
    assert_eq!(
        rfc3339(4_107_542_399_999_999),
        "2100-02-28T23:59:59.999999Z"
    );
    assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999999Z");
}
