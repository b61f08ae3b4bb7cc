//! Hot reload (`refract dev`): a watched component file rewritten with another build
//! of the same version is swapped in and re-projected by the running daemon; a
//! garbage file changes nothing; a new version dropped beside is deployed beside.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::Daemon;
use crate::common::helpdesk::{sdk_event, workload};

pub(crate) type Fold = fn(&[refract_guest::Event]) -> BTreeMap<String, Value>;

pub(crate) fn sample_fold(events: &[refract_guest::Event]) -> BTreeMap<String, Value> {
    refract_guest::testing::project::<incident_details::IncidentDetailsProjection>(events)
        .expect("sample fold")
}

pub(crate) fn edited_fold(events: &[refract_guest::Event]) -> BTreeMap<String, Value> {
    refract_guest::testing::project::<incident_details_edited::EditedIncidentDetails>(events)
        .expect("edited fold")
}

/// Appends `incidents` help-desk incidents; returns their events as the SDK sees them.
pub(crate) async fn append_incidents(
    daemon: &Daemon,
    seed: u64,
    incidents: usize,
    tag: &str,
) -> Vec<refract_guest::Event> {
    let mut out = Vec::new();
    for (id, events) in workload(seed, incidents) {
        let id = format!("{tag}-{id}");
        let (code, body) = daemon.append(&id, Some(0), &events).await;
        assert_eq!(code, 200, "{body}");
        let first = body["first_sequence"].as_i64().expect("sequence");
        for (i, (ty, data)) in events.iter().enumerate() {
            out.push(sdk_event(first + i as i64, &id, i as u64 + 1, ty, data));
        }
    }
    out
}

/// Waits until every document of the unversioned (live) reads equals `fold(events)`.
pub(crate) async fn wait_for_docs(daemon: &Daemon, events: &[refract_guest::Event], fold: Fold) {
    let want = fold(events);
    let started = Instant::now();
    for (id, doc) in &want {
        loop {
            let (_, got) = daemon
                .get(&format!("/projections/incident-details/docs/{id}"))
                .await;
            if &got == doc {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "document {id} is {got}, want {doc}\n{}",
                daemon.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub(crate) async fn wait_for_log(daemon: &Daemon, needle: &str) {
    wait_for_log_count(daemon, needle, 1).await;
}

async fn wait_for_log_count(daemon: &Daemon, needle: &str, count: usize) {
    let started = Instant::now();
    while daemon.log().matches(needle).count() < count {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no {needle:?} in the log:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Replaces `file` the way a build does: written beside, renamed over.
pub(crate) fn rebuild(file: &Path, from: &str) {
    let tmp = file.with_extension("partial");
    std::fs::copy(from, &tmp).expect("copy component");
    std::fs::rename(&tmp, file).expect("rename over the watched file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_swaps_a_rebuilt_component_in_place_and_keeps_serving_through_garbage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let watched = dir.path().join("components");
    std::fs::create_dir_all(&watched).expect("mkdir");
    let file = watched.join("incident_details.wasm");
    std::fs::copy(refract_test_artifacts::INCIDENT_DETAILS_V1, &file).expect("copy");
    let mut daemon = Daemon::start_dev(&dir.path().join("data"), None, &[&watched]);

    // The component found at start-up serves at once.
    let mut events = append_incidents(&daemon, 41, 200, "a").await;
    let head = events.len() as i64;
    daemon
        .wait_caught_up("incident-details", 1, head, Duration::from_secs(60))
        .await;
    wait_for_docs(&daemon, &events, sample_fold).await;

    // Another build of the same name and version: re-projected beside, swapped in.
    rebuild(&file, refract_test_artifacts::INCIDENT_DETAILS_EDITED);
    wait_for_docs(&daemon, &events, edited_fold).await;
    assert!(daemon.is_running(), "no restart");
    wait_for_log(&daemon, "new build of incident-details@v1").await;
    wait_for_log(&daemon, "incident-details@v1 caught up").await;
    let p = daemon.projection("incident-details", 1).await;
    assert_eq!(
        (&p["events_applied"], &p["state"]),
        (&Value::from(head), &Value::from("live")),
        "re-projected once from the first event: {p}"
    );
    let sample_only = sample_fold(&events);
    let any = sample_only.keys().next().expect("a document");
    assert_ne!(
        edited_fold(&events)[any],
        sample_only[any],
        "the builds differ"
    );

    // A broken build: reported with the file and the reason; the edited code keeps
    // serving and projecting new events.
    std::fs::write(&file, b"this is not a component").expect("write garbage");
    wait_for_log(
        &daemon,
        "incident_details.wasm: not a WebAssembly component",
    )
    .await;
    events.extend(append_incidents(&daemon, 42, 20, "b").await);
    wait_for_docs(&daemon, &events, edited_fold).await;
    let log = daemon.log();
    let line = log
        .lines()
        .find(|l| l.contains("not a WebAssembly component"))
        .expect("error line");
    assert!(
        line.contains("the previous version keeps serving"),
        "{line}"
    );

    // A new version dropped beside is deployed beside, and promoted once caught up.
    rebuild(
        &watched.join("incident_details_v2.wasm"),
        refract_test_artifacts::INCIDENT_DETAILS_V2,
    );
    wait_for_log(&daemon, "deployed incident-details@v2").await;
    let head = events.len() as i64;
    daemon
        .wait_caught_up("incident-details", 2, head, Duration::from_secs(60))
        .await;
    let started = Instant::now();
    while daemon.projection("incident-details", 2).await["state"] != "live" {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "v2 not promoted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        daemon.projection("incident-details", 1).await["state"],
        "standby"
    );
    assert!(daemon.is_running(), "no restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_again_and_again_mid_rebuild_ends_with_exactly_the_last_build() {
    let dir = tempfile::tempdir().expect("tempdir");
    let watched = dir.path().join("components");
    std::fs::create_dir_all(&watched).expect("mkdir");
    let file = watched.join("incident_details.wasm");
    std::fs::copy(refract_test_artifacts::INCIDENT_DETAILS_V1, &file).expect("copy");
    // Small pages: a re-projection takes longer than the debounce.
    let config = "page_size = 10\n";
    let daemon = Daemon::start_dev(&dir.path().join("data"), Some(config), &[&watched]);
    let events = append_incidents(&daemon, 43, 1000, "c").await;
    let head = events.len() as i64;
    daemon
        .wait_caught_up("incident-details", 1, head, Duration::from_secs(120))
        .await;

    // Each build lands while the previous candidate is still re-projecting (the next
    // file is written as soon as a build is logged; the re-projection takes longer
    // than the debounce): its agent is stopped mid-rebuild, its tables dropped, and
    // nothing it had in flight may survive into the next.
    let builds = [
        refract_test_artifacts::INCIDENT_DETAILS_EDITED,
        refract_test_artifacts::INCIDENT_DETAILS_PANICKY,
        refract_test_artifacts::INCIDENT_DETAILS_EDITED,
    ];
    for (n, build) in builds.into_iter().enumerate() {
        rebuild(&file, build);
        let started = Instant::now();
        while daemon
            .log()
            .matches("new build of incident-details@v1")
            .count()
            <= n
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "swap {n} not logged:\n{}",
                daemon.log()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // One line from the start-up load (no events then); none from the swaps yet.
    let caught_up = daemon
        .log()
        .matches("incident-details@v1 caught up")
        .count();
    assert_eq!(
        caught_up,
        1,
        "the swaps did not overlap the re-projections:\n{}",
        daemon.log()
    );
    wait_for_docs(&daemon, &events, edited_fold).await;
    let p = daemon
        .wait_caught_up("incident-details", 1, head, Duration::from_secs(120))
        .await;
    assert_eq!(
        p["events_applied"], head,
        "projected once, from the first event: {p}"
    );
    // Only the last build's catch-up is reported.
    wait_for_log_count(&daemon, "incident-details@v1 caught up", 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        daemon
            .log()
            .matches("incident-details@v1 caught up")
            .count(),
        2
    );
}
