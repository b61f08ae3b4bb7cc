//! Documents that span streams (issue 14, seed 004): the samples `user-groups`
//! (identities), `day-travel` (identity and fan-out), `monthly-allocation` (one
//! event split per month) and `tenant-rollup` (a document per tenant), deployed as
//! components, fed a workload over HTTP, and listed back whole: every document
//! equals the SDK's native fold of the same events.

use std::collections::BTreeMap;
use std::time::Duration;

use refract_guest::Projection;
use serde_json::{Value, json};

use crate::common::Daemon;

/// One event of a sample's workload: stream, type, data and tenant.
pub(crate) type Workload = Vec<(String, String, Value, Option<String>)>;

/// Events per sample: several pages' worth (the daemon's page is 500 by default).
pub(crate) const EVENTS: usize = 1_500;

/// `s` with everything but ASCII letters and digits percent-encoded (ids hold `|`, `*`).
pub(crate) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Appends the workload, consecutive events of one stream and tenant in one append,
/// and returns the events as the SDK's native harness sees them, with the head.
pub(crate) async fn append_all(
    daemon: &Daemon,
    workload: Workload,
) -> (Vec<refract_guest::Event>, i64) {
    let mut versions: BTreeMap<String, u64> = BTreeMap::new();
    let mut native = Vec::with_capacity(workload.len());
    let mut head = 0;
    let mut i = 0;
    while i < workload.len() {
        let (stream, _, _, tenant) = &workload[i];
        let run = workload[i..]
            .iter()
            .take_while(|(s, _, _, t)| s == stream && t == tenant)
            .count();
        let batch = &workload[i..i + run];
        let events: Vec<Value> = batch
            .iter()
            .map(|(_, t, d, _)| json!({"type": t, "data": d}))
            .collect();
        let (code, out) = daemon
            .post_json(
                &format!("/streams/{}/events", encode(stream)),
                &json!({"events": events, "tenant": tenant}),
            )
            .await;
        assert_eq!(code, 200, "append to {stream}: {out}");
        let first = out["first_sequence"].as_i64().expect("first_sequence");
        head = out["last_sequence"].as_i64().expect("last_sequence");
        assert_eq!(head - first + 1, run as i64, "{out}");
        let version = versions.entry(stream.clone()).or_insert(0);
        for (k, (_, ty, data, tenant)) in batch.iter().enumerate() {
            *version += 1;
            native.push(refract_guest::Event {
                sequence: (first + k as i64) as u64,
                stream_id: stream.clone(),
                stream_version: *version,
                event_type: ty.clone(),
                data: data.to_string(),
                metadata: "{}".to_owned(),
                tenant: tenant.clone(),
                timestamp: 0,
            });
        }
        i += run;
    }
    (native, head)
}

/// Every document of the live version of `name`, page by page.
async fn listed(daemon: &Daemon, name: &str) -> BTreeMap<String, Value> {
    listed_with(daemon, name, "limit=1000").await
}

/// Every document of the live version of `name` that a listing with `query` shows,
/// page by page.
pub(crate) async fn listed_with(
    daemon: &Daemon,
    name: &str,
    query: &str,
) -> BTreeMap<String, Value> {
    let mut docs = BTreeMap::new();
    let mut after = String::new();
    for _ in 0..1_000 {
        let (code, page) = daemon
            .get(&format!("/projections/{name}/docs?{query}{after}"))
            .await;
        assert_eq!(code, 200, "{page}");
        for d in page["documents"].as_array().expect("documents") {
            let id = d["id"].as_str().expect("id").to_owned();
            assert!(
                docs.insert(id, d["document"].clone()).is_none(),
                "listed twice: {d}"
            );
        }
        match page["next"].as_str() {
            Some(next) => after = format!("&after={}", encode(next)),
            None => return docs,
        }
    }
    panic!("a listing that never ends");
}

/// Deploys `P`'s component, appends its workload and checks every document against
/// the native fold; returns the documents.
async fn equals_native_fold<P: Projection>(
    daemon: &Daemon,
    wasm: &str,
    workload: Workload,
) -> BTreeMap<String, Value> {
    daemon.deploy(wasm).await;
    let (native_events, head) = append_all(daemon, workload).await;
    daemon
        .wait_caught_up(P::NAME, P::VERSION, head, Duration::from_secs(120))
        .await;
    let native = refract_guest::testing::project::<P>(&native_events).expect("native fold");
    assert!(native.len() > 1, "{}: a workload worth checking", P::NAME);
    let docs = listed(daemon, P::NAME).await;
    let differ: Vec<&String> = native
        .keys()
        .chain(docs.keys())
        .filter(|id| native.get(*id) != docs.get(*id))
        .collect();
    assert!(
        differ.is_empty(),
        "{}: {} of {} documents differ from the native fold, e.g. {:?}: {:?} vs native {:?}",
        P::NAME,
        differ.len(),
        native.len(),
        differ[0],
        docs.get(differ[0]),
        native.get(differ[0])
    );
    docs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_004_samples_equal_their_native_folds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), None);
    let users = equals_native_fold::<user_groups::UserGroups>(
        &daemon,
        refract_test_artifacts::USER_GROUPS,
        user_groups::workload(1, EVENTS),
    )
    .await;
    assert!(
        users
            .values()
            .any(|u| u["groups"].as_array().is_some_and(|g| g.len() > 1)),
        "some user is in several groups"
    );
    let days = equals_native_fold::<day_travel::DayTravel>(
        &daemon,
        refract_test_artifacts::DAY_TRAVEL,
        day_travel::workload(2, EVENTS),
    )
    .await;
    assert!(days.keys().all(|id| id.starts_with("day-")), "{days:?}");
    let months = equals_native_fold::<monthly_allocation::MonthlyAllocation>(
        &daemon,
        refract_test_artifacts::MONTHLY_ALLOCATION,
        monthly_allocation::workload(3, EVENTS),
    )
    .await;
    assert!(months.keys().all(|id| id.contains('|')), "{months:?}");
    let tenants = equals_native_fold::<tenant_rollup::TenantRollup>(
        &daemon,
        refract_test_artifacts::TENANT_ROLLUP,
        tenant_rollup::workload(4, EVENTS),
    )
    .await;
    assert!(
        tenants.contains_key(refract_guest::NO_TENANT),
        "{tenants:?}"
    );
    // The single-document route reads what the listing showed.
    let (code, doc) = daemon
        .get(&format!(
            "/projections/tenant-rollup/docs/{}",
            encode(refract_guest::NO_TENANT)
        ))
        .await;
    assert_eq!(code, 200, "{doc}");
    assert_eq!(doc, tenants[refract_guest::NO_TENANT]);
}
