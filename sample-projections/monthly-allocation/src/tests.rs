use std::collections::BTreeMap;

use refract_guest::testing::{Given, given};
use refract_guest::{Envelope, Projection};
use serde_json::{Value, json};

use crate::{AllocationEvent, INVALID_DATE, MonthlyAllocation, WorkloadEvent, month_of, workload};

type P = MonthlyAllocation;

fn given_workload(events: &[WorkloadEvent]) -> Given {
    events
        .iter()
        .fold(given(), |g, (stream, ty, data, tenant)| {
            g.event_with(stream, ty, data.clone(), |e| e.tenant = tenant.clone())
        })
}

fn allocated(events: Given, employee: &str, days: &[(&str, u32)]) -> Given {
    let allocations: Vec<Value> = days
        .iter()
        .map(|(day, hours)| json!({"day": day, "hours": hours}))
        .collect();
    events.event(
        &format!("employee-{employee}"),
        "EmployeeAllocated",
        json!({"employee_id": employee, "allocations": allocations}),
    )
}

fn month(employee: &str, month: &str, hours: u64) -> Value {
    json!({"employee_id": employee, "month": month, "hours": hours})
}

#[test]
fn describes_itself_without_the_child_variant() {
    let d = refract_guest::describe::<P>();
    assert_eq!((d.name.as_str(), d.version), ("monthly-allocation", 1));
    assert_eq!(d.documents, refract_guest::Documents::Custom);
    assert_eq!(d.event_types, ["EmployeeAllocated"]);
}

#[test]
fn one_event_is_split_across_month_and_year_ends() {
    let events = allocated(
        given(),
        "ann",
        &[
            ("2024-01-30", 8),
            ("2024-01-31", 4),
            ("2024-02-01", 2),
            ("2024-12-31", 1),
            ("2025-01-01", 3),
        ],
    );
    let docs = events.docs::<P>();
    assert_eq!(docs["ann|2024-01"], month("ann", "2024-01", 12));
    assert_eq!(docs["ann|2024-02"], month("ann", "2024-02", 2));
    assert_eq!(docs["ann|2024-12"], month("ann", "2024-12", 1));
    assert_eq!(docs["ann|2025-01"], month("ann", "2025-01", 3));
    assert_eq!(docs.len(), 4, "{docs:?}");
}

#[test]
fn months_add_up_over_events_and_employees_stay_apart() {
    let events = allocated(given(), "ann", &[("2024-03-01", 8)]);
    let events = allocated(events, "bo", &[("2024-03-01", 5)]);
    let events = allocated(events, "ann", &[("2024-03-02", 6), ("2024-04-01", 1)]);
    let docs = events.docs::<P>();
    assert_eq!(docs["ann|2024-03"], month("ann", "2024-03", 14));
    assert_eq!(docs["ann|2024-04"], month("ann", "2024-04", 1));
    assert_eq!(docs["bo|2024-03"], month("bo", "2024-03", 5));
    assert_eq!(docs.len(), 3, "{docs:?}");
}

#[test]
fn children_are_one_per_month_in_order_of_first_appearance() {
    let event = given()
        .event(
            "employee-ann",
            "EmployeeAllocated",
            json!({"employee_id": "ann", "allocations": [
                {"day": "2024-03-05", "hours": 1}, {"day": "2024-02-05", "hours": 2},
                {"day": "2024-03-06", "hours": 3}, {"day": "nope", "hours": 4}]}),
        )
        .into_events()
        .remove(0);
    let data: Value = serde_json::from_str(&event.data).unwrap();
    let parsed: AllocationEvent =
        serde_json::from_value(json!({"EmployeeAllocated": data})).unwrap();
    let parent = Envelope::new(parsed, event);
    assert_eq!(
        P::doc_ids(&parent),
        Vec::<String>::new(),
        "the parent goes nowhere"
    );
    let children = P::fan_out(&parent);
    let summary: Vec<(String, Vec<u32>)> = children
        .iter()
        .map(|c| match c {
            AllocationEvent::EmployeeAllocatedInMonth {
                month, allocations, ..
            } => (month.clone(), allocations.iter().map(|a| a.hours).collect()),
            other => panic!("not a child: {other:?}"),
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("2024-03".to_owned(), vec![1, 3]),
            ("2024-02".to_owned(), vec![2]),
            (INVALID_DATE.to_owned(), vec![4]),
        ]
    );
    let ids: Vec<Vec<String>> = children
        .into_iter()
        .map(|c| P::doc_ids(&parent.with(c)))
        .collect();
    assert_eq!(
        ids,
        [["ann|2024-03"], ["ann|2024-02"], ["ann|invalid-date"]]
    );
}

#[test]
fn an_event_without_allocations_makes_no_document() {
    let events = allocated(given(), "ann", &[]);
    assert_eq!(events.docs::<P>(), BTreeMap::new());
    let slices = refract_guest::slice::<P>(events.events()).expect("slices");
    assert!(slices.is_empty(), "{slices:?}");
}

#[test]
fn days_that_are_no_date_count_in_the_invalid_month_without_panicking() {
    let bad = [
        "",
        "2024",
        "2024-01",
        "2024-1-05",
        "2024-01-5 ",
        "2024/01/05",
        "2024-00-10",
        "2024-13-10",
        "2024-01-00",
        "2024-01-32",
        "2024-04-31",
        "2023-02-29",
        "1900-02-29",
        "2024-0é-1",
        "2é2-01-01",
        "２０２４-01-01",
        "+024-01-01",
        "2024-01-01T00:00",
    ];
    for day in bad {
        assert_eq!(month_of(day), INVALID_DATE, "{day:?}");
    }
    for (day, m) in [
        ("2024-02-29", "2024-02"),
        ("2000-02-29", "2000-02"),
        ("0001-12-31", "0001-12"),
        ("9999-01-01", "9999-01"),
    ] {
        assert_eq!(month_of(day), m, "{day:?}");
    }
    let days: Vec<(&str, u32)> = bad.iter().map(|d| (*d, 1)).collect();
    let events = allocated(given(), "ann", &days);
    let docs = events.docs::<P>();
    assert_eq!(
        docs["ann|invalid-date"],
        month("ann", INVALID_DATE, bad.len() as u64)
    );
    assert_eq!(docs.len(), 1, "{docs:?}");
}

#[test]
fn a_malformed_event_is_an_error_naming_it() {
    let events = allocated(given(), "ann", &[("2024-01-01", 1)]).event(
        "employee-ann",
        "EmployeeAllocated",
        json!({"employee_id": "ann", "allocations": [{"day": "2024-01-02", "hours": "eight"}]}),
    );
    let err = events.project::<P>().expect_err("hours are a number");
    assert_eq!(err.event_sequence, Some(2));
    assert!(
        err.message.contains("EmployeeAllocated at sequence 2"),
        "{err}"
    );
}

#[test]
fn an_employee_id_too_long_for_a_document_id_is_an_error_naming_the_event() {
    let longest = "e".repeat(crate::MAX_EMPLOYEE_ID_LEN);
    let docs = allocated(given(), &longest, &[("x", 1)]).docs::<P>();
    let id = docs.keys().next().unwrap();
    assert_eq!(id.len(), 256, "the host's limit exactly");
    for bad in [String::new(), format!("{longest}e"), "a\u{7}b".to_owned()] {
        let err = allocated(given(), &bad, &[("2024-01-01", 1)])
            .project::<P>()
            .expect_err("refused");
        assert_eq!(err.event_sequence, Some(1), "{bad:?}");
        assert!(err.message.contains("employee id"), "{err}");
    }
}

#[test]
fn the_workload_is_deterministic_and_varied() {
    let w = workload(5, 600);
    assert_eq!(w.len(), 600);
    assert_eq!(w, workload(5, 600));
    assert_ne!(w, workload(6, 600));
    let days = || {
        w.iter()
            .flat_map(|e| e.2["allocations"].as_array().unwrap())
            .map(|a| a["day"].as_str().unwrap())
    };
    assert!(days().any(|d| month_of(d) == INVALID_DATE));
    assert!(days().any(|d| d.starts_with("2025-")));
    let crosses = w.iter().any(|e| {
        let months: Vec<&str> = e.2["allocations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| month_of(a["day"].as_str().unwrap()))
            .collect();
        months.windows(2).any(|m| m[0] != m[1])
    });
    assert!(crosses, "no event spans two months");
}

/// The same documents, summed the obvious way straight from the workload.
fn fold_by_hand(events: &[WorkloadEvent]) -> BTreeMap<String, Value> {
    let mut hours: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (_, _, data, _) in events {
        let employee = data["employee_id"].as_str().unwrap();
        for a in data["allocations"].as_array().unwrap() {
            let m = month_of(a["day"].as_str().unwrap());
            *hours.entry((employee.into(), m.into())).or_default() += a["hours"].as_u64().unwrap();
        }
    }
    hours
        .into_iter()
        .map(|((e, m), h)| (format!("{e}|{m}"), month(&e, &m, h)))
        .collect()
}

#[test]
fn the_workload_projects_page_by_page_as_summed_by_hand() {
    // 1,200 events: three pages, so documents travel between pages as JSON.
    let w = workload(42, 1_200);
    let docs = given_workload(&w).project::<P>().expect("projects");
    assert_eq!(docs, fold_by_hand(&w));
    assert!(docs.keys().any(|id| id.ends_with("|invalid-date")));
}
