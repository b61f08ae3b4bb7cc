use std::collections::BTreeMap;

use refract_guest::testing::{Given, given};
use serde_json::{Value, json};

use crate::{UserGroups, UserGroupsAssignment, WorkloadEvent, workload};

type P = UserGroups;

fn registered(events: Given, user: &str) -> Given {
    events.event(
        user,
        "UserRegistered",
        json!({"user_id": user, "email": format!("{user}@example.com")}),
    )
}

fn assigned(events: Given, group: &str, users: &[&str]) -> Given {
    events.event(
        group,
        "MultipleUsersAssignedToGroup",
        json!({"group_id": group, "user_ids": users}),
    )
}

fn given_workload(events: &[WorkloadEvent]) -> Given {
    events
        .iter()
        .fold(given(), |g, (stream, ty, data, tenant)| {
            g.event_with(stream, ty, data.clone(), |e| e.tenant = tenant.clone())
        })
}

#[test]
fn describes_itself() {
    let d = refract_guest::describe::<P>();
    assert_eq!((d.name.as_str(), d.version), ("user-groups", 1));
    assert_eq!(d.documents, refract_guest::Documents::Custom);
    assert_eq!(
        d.event_types,
        [
            "UserRegistered",
            "SingleUserAssignedToGroup",
            "MultipleUsersAssignedToGroup"
        ]
    );
}

#[test]
fn one_assignment_reaches_every_user_it_names_across_streams() {
    let events = registered(given(), "ann");
    let events = registered(events, "bo");
    let events = assigned(events, "admins", &["ann", "bo"])
        .event(
            "ops",
            "SingleUserAssignedToGroup",
            json!({"group_id": "ops", "user_id": "bo"}),
        )
        .event("ops", "GroupRenamed", json!({"name": "operations"}));
    let docs = events.docs::<P>();
    assert_eq!(
        docs["ann"],
        json!({"id": "ann", "email": "ann@example.com", "groups": ["admins"]})
    );
    assert_eq!(
        docs["bo"],
        json!({"id": "bo", "email": "bo@example.com", "groups": ["admins", "ops"]})
    );
    assert_eq!(docs.len(), 2, "groups get no document: {docs:?}");
}

#[test]
fn a_user_assigned_before_registering_still_gets_a_document() {
    let events = assigned(given(), "admins", &["cy"]);
    assert_eq!(
        events.doc::<P>("cy"),
        Some(json!({"id": "cy", "email": null, "groups": ["admins"]}))
    );
    let events = registered(events, "cy");
    assert_eq!(
        events.doc::<P>("cy"),
        Some(json!({"id": "cy", "email": "cy@example.com", "groups": ["admins"]}))
    );
}

#[test]
fn a_group_is_listed_once_however_often_it_assigns_the_user() {
    let events = registered(given(), "ann").event(
        "admins",
        "SingleUserAssignedToGroup",
        json!({"group_id": "admins", "user_id": "ann"}),
    );
    let events = assigned(events, "admins", &["ann"]);
    let events = assigned(events, "ops", &["ann"]);
    assert_eq!(
        events.doc::<P>("ann").unwrap()["groups"],
        json!(["admins", "ops"])
    );
}

#[test]
fn a_user_named_twice_in_one_event_is_sliced_once() {
    let page = assigned(given(), "admins", &["ann", "bo", "ann"]).into_events();
    let slices = refract_guest::slice::<P>(&page).expect("slices");
    let ids: Vec<(&str, &[u32])> = slices
        .iter()
        .map(|s| (s.doc_id.as_str(), s.events.as_slice()))
        .collect();
    assert_eq!(ids, [("ann", &[0][..]), ("bo", &[0][..])]);
    let events = assigned(given(), "admins", &["ann", "ann"]);
    assert_eq!(events.doc::<P>("ann").unwrap()["groups"], json!(["admins"]));
}

#[test]
fn an_assignment_naming_nobody_makes_no_document() {
    let events = assigned(given(), "admins", &[]);
    assert_eq!(events.docs::<P>(), BTreeMap::new());
}

#[test]
fn a_malformed_event_is_an_error_naming_it() {
    let events = registered(given(), "ann").event(
        "admins",
        "SingleUserAssignedToGroup",
        json!({"group_id": "admins", "user_id": 7}),
    );
    let err = events.project::<P>().expect_err("user_id is not a string");
    assert_eq!(err.event_sequence, Some(2));
    assert!(
        err.message
            .contains("SingleUserAssignedToGroup at sequence 2"),
        "{err}"
    );
}

#[test]
fn a_user_id_the_host_would_refuse_as_a_document_id_is_an_error_naming_the_event() {
    for bad in [String::new(), "a\nb".to_owned(), "u".repeat(257)] {
        let err = assigned(given(), "admins", &["ann", &bad])
            .project::<P>()
            .expect_err("refused");
        assert_eq!(err.event_sequence, Some(1), "{bad:?}");
        assert!(
            err.message.contains("MultipleUsersAssignedToGroup") && err.message.contains("user id"),
            "{err}"
        );
    }
    assert!(registered(given(), &"u".repeat(256)).project::<P>().is_ok());
}

#[test]
fn the_workload_is_deterministic_and_varied() {
    let w = workload(7, 600);
    assert_eq!(w.len(), 600);
    assert_eq!(w, workload(7, 600));
    assert_ne!(w, workload(8, 600));
    for ty in [
        "UserRegistered",
        "SingleUserAssignedToGroup",
        "MultipleUsersAssignedToGroup",
    ] {
        assert!(w.iter().any(|e| e.1 == ty), "no {ty}");
    }
    assert!(w.iter().all(|e| e.3.is_none()));
}

/// The same documents, folded the obvious way straight from the workload.
fn fold_by_hand(events: &[WorkloadEvent]) -> BTreeMap<String, Value> {
    let mut users: BTreeMap<String, UserGroupsAssignment> = BTreeMap::new();
    for (_, ty, data, _) in events {
        let text = |v: &Value| v.as_str().unwrap().to_owned();
        let (ids, group) = match ty.as_str() {
            "UserRegistered" => (vec![text(&data["user_id"])], None),
            "SingleUserAssignedToGroup" => (vec![text(&data["user_id"])], Some(&data["group_id"])),
            _ => (
                data["user_ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(text)
                    .collect(),
                Some(&data["group_id"]),
            ),
        };
        for id in ids {
            let doc = users
                .entry(id.clone())
                .or_insert_with(|| UserGroupsAssignment {
                    id,
                    ..UserGroupsAssignment::default()
                });
            match group {
                None => doc.email = Some(text(&data["email"])),
                Some(group) if !doc.groups.contains(&text(group)) => doc.groups.push(text(group)),
                Some(_) => {}
            }
        }
    }
    users
        .into_iter()
        .map(|(id, doc)| (id, serde_json::to_value(doc).unwrap()))
        .collect()
}

#[test]
fn the_workload_projects_page_by_page_as_folded_by_hand() {
    // 1,200 events: three pages, so documents travel between pages as JSON.
    let w = workload(42, 1_200);
    let docs = given_workload(&w).project::<P>().expect("projects");
    assert_eq!(docs, fold_by_hand(&w));
    assert!(docs.values().any(|d| d["email"].is_null()), "{docs:?}");
    assert!(
        docs.values()
            .any(|d| d["groups"].as_array().unwrap().len() > 1)
    );
}
