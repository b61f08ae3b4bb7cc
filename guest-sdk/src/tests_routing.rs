//! Routing events to documents: identity, identities, fan-out and rollup by tenant,
//! through `slice` and `apply` as the host calls them.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::testing::given;
use crate::{Documents, Envelope, Projection};

/// A day's travel: trips start and end on a day; a `Travel` carries movements and
/// stops, each dated, which are children of their own.
#[derive(Debug, Deserialize)]
enum DayEvent {
    TripStarted {
        day: u32,
    },
    Travel {
        day: u32,
        movements: Vec<Movement>,
        stops: Vec<u32>,
    },
    #[serde(skip)]
    Moved(Movement),
    #[serde(skip)]
    Stopped(u32),
}

#[derive(Debug, Clone, Deserialize)]
struct Movement {
    day: u32,
    distance: u32,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Day {
    started: u32,
    travels: u32,
    distance: u32,
    stops: u32,
}

struct Days;

impl Projection for Days {
    type Event = DayEvent;
    type Doc = Day;
    const NAME: &'static str = "days";
    const VERSION: u32 = 1;
    const DOCUMENTS: Documents = Documents::Custom;

    fn doc_id(event: &Envelope<DayEvent>) -> String {
        let day = match &event.event {
            DayEvent::TripStarted { day } | DayEvent::Travel { day, .. } => *day,
            DayEvent::Moved(m) => m.day,
            DayEvent::Stopped(day) => *day,
        };
        format!("day-{day}")
    }

    fn fan_out(event: &Envelope<DayEvent>) -> Vec<DayEvent> {
        match &event.event {
            DayEvent::Travel {
                movements, stops, ..
            } => movements
                .iter()
                .cloned()
                .map(DayEvent::Moved)
                .chain(stops.iter().copied().map(DayEvent::Stopped))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn create(_id: &str, _event: &Envelope<DayEvent>) -> Option<Day> {
        let mut day = Day::default();
        Self::apply(&mut day, _event);
        Some(day)
    }

    fn apply(day: &mut Day, event: &Envelope<DayEvent>) {
        match &event.event {
            DayEvent::TripStarted { .. } => day.started += 1,
            DayEvent::Travel { .. } => day.travels += 1,
            DayEvent::Moved(m) => day.distance += m.distance,
            DayEvent::Stopped(_) => day.stops += 1,
        }
    }
}

#[test]
fn skipped_child_variants_are_not_event_types() {
    assert_eq!(
        crate::describe::<Days>().event_types,
        ["TripStarted", "Travel"]
    );
}

#[test]
fn fan_out_folds_each_child_into_the_document_of_its_own_day() {
    let docs = given()
        .event("trip-1", "TripStarted", json!({"day": 1}))
        .event(
            "trip-1",
            "Travel",
            json!({"day": 1, "movements": [{"day": 1, "distance": 3}, {"day": 2, "distance": 5},
                   {"day": 2, "distance": 7}], "stops": [2, 3]}),
        )
        .event("trip-2", "TripStarted", json!({"day": 2}))
        .docs::<Days>();
    assert_eq!(
        docs["day-1"],
        json!({"started": 1, "travels": 1, "distance": 3, "stops": 0})
    );
    // Day 2 gets two movements and a stop of trip 1's Travel, but not the Travel.
    assert_eq!(
        docs["day-2"],
        json!({"started": 1, "travels": 0, "distance": 12, "stops": 1})
    );
    assert_eq!(
        docs["day-3"],
        json!({"started": 0, "travels": 0, "distance": 0, "stops": 1})
    );
    assert_eq!(docs.len(), 3, "{docs:?}");
}

#[test]
fn a_parent_is_sliced_once_into_each_document_its_children_reach() {
    let page = given()
        .event(
            "trip-1",
            "Travel",
            json!({"day": 1, "movements": [{"day": 2, "distance": 1}, {"day": 2, "distance": 1}],
                   "stops": []}),
        )
        .into_events();
    let slices = crate::slice::<Days>(&page).expect("slice");
    let ids: Vec<(&str, &[u32])> = slices
        .iter()
        .map(|s| (s.doc_id.as_str(), s.events.as_slice()))
        .collect();
    assert_eq!(ids, [("day-1", &[0][..]), ("day-2", &[0][..])]);
}

/// Users assigned to groups: one event, several users' documents.
#[derive(Debug, Deserialize)]
enum GroupEvent {
    Assigned { group: String, users: Vec<String> },
}

struct UserGroups;

impl Projection for UserGroups {
    type Event = GroupEvent;
    type Doc = Vec<String>;
    const NAME: &'static str = "user-groups";
    const VERSION: u32 = 1;
    const DOCUMENTS: Documents = Documents::Custom;

    fn doc_ids(event: &Envelope<GroupEvent>) -> Vec<String> {
        let GroupEvent::Assigned { users, .. } = &event.event;
        users.clone()
    }

    fn create(_id: &str, event: &Envelope<GroupEvent>) -> Option<Vec<String>> {
        let mut groups = Vec::new();
        Self::apply(&mut groups, event);
        Some(groups)
    }

    fn apply(groups: &mut Vec<String>, event: &Envelope<GroupEvent>) {
        let GroupEvent::Assigned { group, .. } = &event.event;
        groups.push(group.clone());
    }
}

#[test]
fn identities_fold_one_event_into_every_document_it_names() {
    let docs = given()
        .event(
            "g-1",
            "Assigned",
            json!({"group": "admins", "users": ["ann", "bo", "ann"]}),
        )
        .event("g-2", "Assigned", json!({"group": "ops", "users": ["bo"]}))
        .event("g-3", "Assigned", json!({"group": "nobody", "users": []}))
        .docs::<UserGroups>();
    assert_eq!(docs["ann"], json!(["admins"]), "listed twice, folded once");
    assert_eq!(docs["bo"], json!(["admins", "ops"]));
    assert_eq!(docs.len(), 2, "{docs:?}");
}

/// Counts events per tenant.
#[derive(Debug, Deserialize)]
enum Counted {
    Happened {},
}

struct PerTenant;

impl Projection for PerTenant {
    type Event = Counted;
    type Doc = u64;
    const NAME: &'static str = "per-tenant";
    const VERSION: u32 = 1;
    const DOCUMENTS: Documents = Documents::PerTenant;

    fn create(_id: &str, _event: &Envelope<Counted>) -> Option<u64> {
        Some(1)
    }

    fn apply(count: &mut u64, _event: &Envelope<Counted>) {
        *count += 1;
    }
}

#[test]
fn rollup_by_tenant_keys_documents_by_the_events_tenant() {
    let tenant = |t: &'static str| move |e: &mut crate::Event| e.tenant = Some(t.into());
    let docs = given()
        .event_with("s-1", "Happened", json!({}), tenant("acme"))
        .event_with("s-2", "Happened", json!({}), tenant("acme"))
        .event_with("s-1", "Happened", json!({}), tenant("globex"))
        .event_with("s-3", "Happened", json!({}), |e| e.tenant = None)
        .docs::<PerTenant>();
    assert_eq!(docs["acme"], json!(2));
    assert_eq!(docs["globex"], json!(1));
    assert_eq!(docs[crate::NO_TENANT], json!(1));
    // The host calls `slice` for it: the SDK, not the host, names the documents.
    let d = crate::describe::<PerTenant>();
    assert_eq!(d.documents, Documents::PerTenant);
    assert!(d.v1_0_options().is_empty(), "{:?}", d.options);
}

#[test]
fn a_document_id_the_host_would_refuse_is_an_error_naming_the_event() {
    for (users, problem) in [
        (json!([""]), "is empty"),
        (json!(["a\nb"]), "control character"),
        (json!(["x".repeat(257)]), "257 bytes long"),
    ] {
        let err = given()
            .event("g-1", "Assigned", json!({"group": "ok", "users": ["fine"]}))
            .event("g-2", "Assigned", json!({"group": "bad", "users": users}))
            .project::<UserGroups>()
            .expect_err("refused");
        assert_eq!(err.event_sequence, Some(2), "{}", err.message);
        assert!(
            err.message.contains(problem) && err.message.contains("Assigned at sequence 2"),
            "{}",
            err.message
        );
    }
    let longest = "x".repeat(crate::engine::MAX_DOC_ID_BYTES);
    let docs = given()
        .event(
            "g-1",
            "Assigned",
            json!({"group": "ok", "users": [longest]}),
        )
        .docs::<UserGroups>();
    assert_eq!(docs.len(), 1, "the longest id is fine");
}

thread_local! {
    static FAN_OUTS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Days, counting its `fan_out` calls.
struct CountedDays;

impl Projection for CountedDays {
    type Event = DayEvent;
    type Doc = Day;
    const NAME: &'static str = "counted-days";
    const VERSION: u32 = 1;
    const DOCUMENTS: Documents = Documents::Custom;

    fn doc_id(event: &Envelope<DayEvent>) -> String {
        Days::doc_id(event)
    }

    fn fan_out(event: &Envelope<DayEvent>) -> Vec<DayEvent> {
        FAN_OUTS.set(FAN_OUTS.get() + 1);
        Days::fan_out(event)
    }

    fn create(id: &str, event: &Envelope<DayEvent>) -> Option<Day> {
        Days::create(id, event)
    }

    fn apply(day: &mut Day, event: &Envelope<DayEvent>) {
        Days::apply(day, event);
    }
}

#[test]
fn a_parent_reaching_many_documents_is_decoded_and_fanned_out_once_per_call() {
    let movements: Vec<_> = (0..500).map(|d| json!({"day": d, "distance": 1})).collect();
    let page = given()
        .event(
            "trip-1",
            "Travel",
            json!({"day": 0, "movements": movements, "stops": []}),
        )
        .into_events();
    let slices = crate::slice::<CountedDays>(&page).expect("slice");
    assert_eq!(slices.len(), 500);
    FAN_OUTS.set(0);
    let docs = slices
        .iter()
        .map(|s| crate::DocEvents {
            collection: None,
            doc_id: s.doc_id.clone(),
            state: None,
            events: s.events.iter().map(|&i| page[i as usize].clone()).collect(),
        })
        .collect();
    let changes = crate::apply::<CountedDays>(docs).expect("apply");
    assert_eq!(FAN_OUTS.get(), 1, "not once per document");
    assert!(
        changes
            .iter()
            .all(|c| matches!(c, crate::DocChange::Put(_)))
    );
}
