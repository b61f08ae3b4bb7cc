use std::collections::BTreeMap;

use refract_guest::testing::{Given, given};
use serde_json::{Value, json};

use crate::{Day, DayTravel, WorkloadEvent, day_id, workload};

type P = DayTravel;

fn given_workload(events: &[WorkloadEvent]) -> Given {
    events
        .iter()
        .fold(given(), |g, (stream, ty, data, tenant)| {
            g.event_with(stream, ty, data.clone(), |e| e.tenant = tenant.clone())
        })
}

fn day(day: u32, counts: Value) -> Value {
    let mut doc = json!({"day": day, "started": 0, "ended": 0, "north": 0, "south": 0,
                         "east": 0, "west": 0, "stops": 0});
    for (k, v) in counts.as_object().unwrap() {
        doc[k] = v.clone();
    }
    doc
}

#[test]
fn describes_itself_without_the_child_variants() {
    let d = refract_guest::describe::<P>();
    assert_eq!((d.name.as_str(), d.version), ("day-travel", 1));
    assert_eq!(d.documents, refract_guest::Documents::Custom);
    assert_eq!(d.event_types, ["TripStarted", "TripEnded", "Travel"]);
}

#[test]
fn movements_and_stops_count_in_the_day_they_happened_on() {
    let docs = given()
        .event("trip-1", "TripStarted", json!({"day": 1}))
        .event(
            "trip-1",
            "Travel",
            json!({"day": 1,
                   "movements": [{"day": 1, "direction": "North", "distance": 3},
                                 {"day": 2, "direction": "East", "distance": 5},
                                 {"day": 2, "direction": "East", "distance": 2}],
                   "stops": [{"day": 1, "place": "Inn"}, {"day": 2, "place": "Ferry"}]}),
        )
        .event("trip-1", "TripEnded", json!({"day": 2}))
        .docs::<P>();
    assert_eq!(
        docs["day-1"],
        day(1, json!({"started": 1, "north": 3, "stops": 1}))
    );
    assert_eq!(
        docs["day-2"],
        day(2, json!({"ended": 1, "east": 7, "stops": 1}))
    );
    assert_eq!(docs.len(), 2, "{docs:?}");
}

#[test]
fn trips_on_the_same_day_add_up_in_one_document() {
    let docs = given()
        .event("trip-1", "TripStarted", json!({"day": 4}))
        .event("trip-2", "TripStarted", json!({"day": 4}))
        .event(
            "trip-2",
            "Travel",
            json!({"day": 4, "movements": [{"day": 4, "direction": "South", "distance": 9}]}),
        )
        .event(
            "trip-1",
            "Travel",
            json!({"day": 4, "movements": [{"day": 4, "direction": "West", "distance": 1},
                                           {"day": 4, "direction": "South", "distance": 1}]}),
        )
        .docs::<P>();
    assert_eq!(
        docs["day-4"],
        day(4, json!({"started": 2, "south": 10, "west": 1}))
    );
}

#[test]
fn a_travel_whose_children_are_all_on_other_days_leaves_no_empty_day() {
    let docs = given()
        .event(
            "trip-1",
            "Travel",
            json!({"day": 5, "movements": [{"day": 6, "direction": "North", "distance": 4}],
                   "stops": []}),
        )
        .event("trip-1", "Travel", json!({"day": 7}))
        .docs::<P>();
    assert_eq!(
        docs.keys().collect::<Vec<_>>(),
        ["day-6"],
        "no day-5, no day-7"
    );
}

#[test]
fn an_unknown_direction_is_an_error_naming_the_travel() {
    let events = given()
        .event("trip-1", "TripStarted", json!({"day": 1}))
        .event(
            "trip-1",
            "Travel",
            json!({"day": 1, "movements": [{"day": 1, "direction": "Up", "distance": 1}]}),
        );
    let err = events.project::<P>().expect_err("Up is no direction");
    assert_eq!(err.event_sequence, Some(2));
    assert!(err.message.contains("Travel at sequence 2"), "{err}");
    assert!(err.message.contains("unknown variant `Up`"), "{err}");
}

#[test]
fn a_negative_distance_is_an_error_naming_the_travel() {
    let err = given()
        .event(
            "trip-1",
            "Travel",
            json!({"day": 1, "movements": [{"day": 1, "direction": "West", "distance": -2}]}),
        )
        .project::<P>()
        .expect_err("distances are unsigned");
    assert_eq!(err.event_sequence, Some(1));
    assert!(err.message.contains("Travel at sequence 1"), "{err}");
}

#[test]
fn the_workload_is_deterministic_and_crosses_midnight() {
    let w = workload(3, 800);
    assert_eq!(w.len(), 800);
    assert_eq!(w, workload(3, 800));
    assert_ne!(w, workload(4, 800));
    for ty in ["TripStarted", "TripEnded", "Travel"] {
        assert!(w.iter().any(|e| e.1 == ty), "no {ty}");
    }
    let crosses = w.iter().filter(|e| e.1 == "Travel").any(|(_, _, data, _)| {
        data["movements"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["day"] != data["day"])
    });
    assert!(crosses, "no Travel runs into the next day");
}

/// The same documents, folded the obvious way straight from the workload.
fn fold_by_hand(events: &[WorkloadEvent]) -> BTreeMap<String, Value> {
    let mut days: BTreeMap<u32, Day> = BTreeMap::new();
    let mut count = |d: &Value, f: &dyn Fn(&mut Day)| {
        let d = d.as_u64().unwrap() as u32;
        f(days.entry(d).or_insert_with(|| Day {
            day: d,
            ..Day::default()
        }));
    };
    for (_, ty, data, _) in events {
        match ty.as_str() {
            "TripStarted" => count(&data["day"], &|d| d.started += 1),
            "TripEnded" => count(&data["day"], &|d| d.ended += 1),
            _ => {
                for m in data["movements"].as_array().unwrap() {
                    let km = m["distance"].as_u64().unwrap();
                    match m["direction"].as_str().unwrap() {
                        "North" => count(&m["day"], &|d| d.north += km),
                        "South" => count(&m["day"], &|d| d.south += km),
                        "East" => count(&m["day"], &|d| d.east += km),
                        _ => count(&m["day"], &|d| d.west += km),
                    }
                }
                for s in data["stops"].as_array().unwrap() {
                    count(&s["day"], &|d| d.stops += 1);
                }
            }
        }
    }
    days.into_values()
        .map(|d| (day_id(d.day), serde_json::to_value(d).unwrap()))
        .collect()
}

#[test]
fn the_workload_projects_page_by_page_as_folded_by_hand() {
    // 1,200 events: three pages, so documents travel between pages as JSON.
    let w = workload(42, 1_200);
    let docs = given_workload(&w).project::<P>().expect("projects");
    assert_eq!(docs, fold_by_hand(&w));
    assert!(docs.len() > 10, "{}", docs.len());
}
