use refract_guest::testing::{Given, given};
use serde_json::{Value, json};

use crate::{IncidentDetails, IncidentDetailsProjection, IncidentStatus};

type P = IncidentDetailsProjection;

fn logged(events: Given, incident: &str, customer: &str) -> Given {
    events.event(
        incident,
        "IncidentLogged",
        json!({
            "customer_id": customer,
            "contact": {"channel": "email", "email_address": "ann@example.com"},
            "description": "the printer is on fire",
            "logged_by": "agent-0",
        }),
    )
}

#[test]
fn describes_itself() {
    let d = refract_guest::describe::<P>();
    assert_eq!((d.name.as_str(), d.version), ("incident-details", 1));
    assert_eq!(
        d.event_types,
        [
            "IncidentLogged",
            "IncidentCategorised",
            "IncidentPrioritised",
            "AgentAssignedToIncident",
            "IncidentResolved",
            "ResolutionAcknowledgedByCustomer",
            "IncidentClosed",
        ]
    );
}

#[test]
fn a_logged_incident_is_pending_with_nothing_set() {
    let events = logged(given(), "inc-1", "cust-1");
    let expected = json!({
        "id": "inc-1",
        "customer_id": "cust-1",
        "status": "Pending",
        "category": null,
        "priority": null,
        "agent_id": null,
    });
    assert_eq!(events.doc::<P>("inc-1"), Some(expected));
}

#[test]
fn a_full_lifecycle() {
    let mut events = logged(given(), "inc-1", "cust-1")
        .event(
            "inc-1",
            "IncidentCategorised",
            json!({"category": "Hardware", "categorised_by": "agent-1"}),
        )
        .event(
            "inc-1",
            "IncidentPrioritised",
            json!({"priority": "Critical", "prioritised_by": "agent-1"}),
        )
        .event(
            "inc-1",
            "AgentAssignedToIncident",
            json!({"agent_id": "agent-7"}),
        );
    let status = |events: &Given| -> Value { events.doc::<P>("inc-1").unwrap()["status"].clone() };
    assert_eq!(status(&events), "Pending");

    events = events.event(
        "inc-1",
        "IncidentResolved",
        json!({"resolution": "Fixed", "resolved_by": "agent-7"}),
    );
    assert_eq!(status(&events), "Resolved");
    events = events.event(
        "inc-1",
        "ResolutionAcknowledgedByCustomer",
        json!({"acknowledged_by": "cust-1"}),
    );
    assert_eq!(status(&events), "ResolutionAcknowledgedByCustomer");
    events = events.event("inc-1", "IncidentClosed", json!({"closed_by": "agent-7"}));

    let doc: IncidentDetails = serde_json::from_value(events.doc::<P>("inc-1").unwrap()).unwrap();
    let expected = IncidentDetails {
        id: "inc-1".into(),
        customer_id: "cust-1".into(),
        status: IncidentStatus::Closed,
        category: Some("Hardware".into()),
        priority: Some("Critical".into()),
        agent_id: Some("agent-7".into()),
    };
    assert_eq!(doc, expected);
}

#[test]
fn events_for_an_incident_never_logged_are_ignored() {
    let events = given()
        .event("inc-9", "AgentAssignedToIncident", json!({"agent_id": "a"}))
        .event("inc-9", "IncidentClosed", json!({"closed_by": "a"}));
    assert!(events.docs::<P>().is_empty());
}

#[test]
fn event_types_of_later_versions_are_skipped() {
    let events = logged(given(), "inc-1", "cust-1")
        .event("inc-1", "IncidentDuplicated", json!({"other_id": "inc-2"}))
        .event("inc-1", "AgentAssignedToIncident", json!({"agent_id": "a"}));
    let doc = events.doc::<P>("inc-1").unwrap();
    assert_eq!(doc["agent_id"], "a");
}

#[test]
fn a_second_logged_event_changes_nothing() {
    let events = logged(logged(given(), "inc-1", "cust-1"), "inc-1", "cust-2");
    assert_eq!(events.doc::<P>("inc-1").unwrap()["customer_id"], "cust-1");
}

#[test]
fn many_interleaved_incidents_over_several_pages() {
    let mut events = given();
    for i in 0..300 {
        events = logged(events, &format!("inc-{i}"), &format!("cust-{}", i % 7));
    }
    for i in 0..300 {
        let id = format!("inc-{i}");
        events = events.event(
            &id,
            "AgentAssignedToIncident",
            json!({"agent_id": format!("a-{i}")}),
        );
        if i % 3 == 0 {
            events = events.event(
                &id,
                "IncidentResolved",
                json!({"resolution": "r", "resolved_by": "a"}),
            );
        }
    }
    let docs = events.docs::<P>();
    assert_eq!(docs.len(), 300);
    assert_eq!(docs["inc-42"]["agent_id"], "a-42");
    assert_eq!(docs["inc-42"]["status"], "Resolved");
    assert_eq!(docs["inc-43"]["status"], "Pending");
    assert_eq!(docs["inc-43"]["customer_id"], "cust-1");
}

#[test]
fn a_malformed_event_is_reported_with_its_sequence() {
    let events = logged(given(), "inc-1", "cust-1").event(
        "inc-1",
        "IncidentPrioritised",
        json!({"prioritised_by": "a"}),
    );
    let error = events.project::<P>().unwrap_err();
    assert_eq!(error.event_sequence, Some(2));
    assert!(
        error.message.starts_with(
            "cannot decode IncidentPrioritised at sequence 2: missing field `priority`"
        ),
        "{error}"
    );
}
