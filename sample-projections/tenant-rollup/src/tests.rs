use std::collections::BTreeMap;

use refract_guest::NO_TENANT;
use refract_guest::testing::{Given, given};
use serde_json::{Value, json};

use crate::{TENANTS, TenantRollup, WorkloadEvent, workload};

type P = TenantRollup;

fn given_workload(events: &[WorkloadEvent]) -> Given {
    events
        .iter()
        .fold(given(), |g, (stream, ty, data, tenant)| {
            g.event_with(stream, ty, data.clone(), |e| e.tenant = tenant.clone())
        })
}

/// Appends an event for `tenant`.
fn at(events: Given, tenant: Option<&str>, stream: &str, event_type: &str) -> Given {
    events.event_with(stream, event_type, json!({}), |e| {
        e.tenant = tenant.map(str::to_owned)
    })
}

fn rollup(tenant: &str, accounts: u64, open_issues: i64, issues_closed: u64) -> Value {
    json!({"tenant": tenant, "accounts": accounts, "open_issues": open_issues,
           "issues_closed": issues_closed})
}

#[test]
fn describes_itself() {
    let d = refract_guest::describe::<P>();
    assert_eq!((d.name.as_str(), d.version), ("tenant-rollup", 1));
    assert_eq!(d.documents, refract_guest::Documents::PerTenant);
    assert_eq!(
        d.event_types,
        ["AccountOpened", "IssueOpened", "IssueClosed"]
    );
}

#[test]
fn each_tenant_gets_one_document_over_all_its_streams() {
    let acme = Some("acme");
    let events = at(given(), acme, "account-1", "AccountOpened");
    let events = at(events, acme, "account-2", "AccountOpened");
    let events = at(events, Some("globex"), "account-3", "AccountOpened");
    let events = at(events, acme, "issue-1", "IssueOpened");
    let events = at(events, acme, "issue-2", "IssueOpened");
    let events = at(events, acme, "issue-1", "IssueClosed");
    let events = at(events, acme, "issue-1", "IssueReopenedSomeday");
    let docs = events.docs::<P>();
    assert_eq!(docs["acme"], rollup("acme", 2, 1, 1));
    assert_eq!(docs["globex"], rollup("globex", 1, 0, 0));
    assert_eq!(docs.len(), 2, "streams get no document: {docs:?}");
}

#[test]
fn events_without_a_tenant_count_in_the_no_tenant_document() {
    let events = at(given(), None, "account-1", "AccountOpened");
    let events = at(events, None, "issue-1", "IssueOpened");
    let events = at(events, Some("acme"), "issue-2", "IssueOpened");
    let docs = events.docs::<P>();
    assert_eq!(docs[NO_TENANT], rollup(NO_TENANT, 1, 1, 0));
    assert_eq!(docs["acme"], rollup("acme", 0, 1, 0));
}

#[test]
fn more_closes_than_opens_show_as_a_negative_count() {
    let events = at(given(), Some("acme"), "issue-1", "IssueClosed");
    assert_eq!(events.doc::<P>("acme"), Some(rollup("acme", 0, -1, 1)));
}

#[test]
fn event_data_is_not_read_but_must_be_an_object() {
    let events = given()
        .event(
            "account-1",
            "AccountOpened",
            json!({"owner": "ann", "plan": 3}),
        )
        .event("issue-1", "IssueOpened", json!("printer on fire"));
    let err = events.project::<P>().expect_err("a string is no event");
    assert_eq!(err.event_sequence, Some(2));
    assert!(err.message.contains("IssueOpened at sequence 2"), "{err}");
}

#[test]
fn the_workload_is_deterministic_and_uses_every_tenant() {
    let w = workload(9, 600);
    assert_eq!(w.len(), 600);
    assert_eq!(w, workload(9, 600));
    assert_ne!(w, workload(10, 600));
    for tenant in TENANTS {
        assert!(w.iter().any(|e| e.3.as_deref() == tenant), "{tenant:?}");
    }
    for ty in ["AccountOpened", "IssueOpened", "IssueClosed"] {
        assert!(w.iter().any(|e| e.1 == ty), "no {ty}");
    }
    // A stream keeps its tenant, as it would in a store.
    let mut tenants: BTreeMap<&str, &Option<String>> = BTreeMap::new();
    for (stream, _, _, tenant) in &w {
        assert_eq!(*tenants.entry(stream).or_insert(tenant), tenant, "{stream}");
    }
}

/// The same documents, counted the obvious way straight from the workload.
fn fold_by_hand(events: &[WorkloadEvent]) -> BTreeMap<String, Value> {
    let mut counts: BTreeMap<String, (u64, i64, u64)> = BTreeMap::new();
    for (_, ty, _, tenant) in events {
        let c = counts
            .entry(tenant.clone().unwrap_or_else(|| NO_TENANT.to_owned()))
            .or_default();
        match ty.as_str() {
            "AccountOpened" => c.0 += 1,
            "IssueOpened" => c.1 += 1,
            _ => (c.1, c.2) = (c.1 - 1, c.2 + 1),
        }
    }
    counts
        .into_iter()
        .map(|(t, (a, o, c))| (t.clone(), rollup(&t, a, o, c)))
        .collect()
}

#[test]
fn the_workload_projects_page_by_page_as_counted_by_hand() {
    // 1,200 events: three pages, so documents travel between pages as JSON.
    let w = workload(42, 1_200);
    let docs = given_workload(&w).project::<P>().expect("projects");
    assert_eq!(docs, fold_by_hand(&w));
    assert_eq!(docs.len(), TENANTS.len());
    assert!(
        docs.values()
            .all(|d| d["open_issues"].as_i64().unwrap() >= 0)
    );
}
