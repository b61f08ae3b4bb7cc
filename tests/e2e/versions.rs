//! Versions side by side (seed 001): v1 and v2 of incident-details project the same
//! store into their own documents; v1 skips `IncidentDuplicated`, which it does not
//! know, and counts it; v2 lists the duplicates.

use std::time::Duration;

use serde_json::json;

use crate::common::Daemon;
use crate::common::helpdesk::{Rng, sdk_event, workload};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_skips_what_v2_handles_and_both_reach_the_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), None);
    let v1 = daemon
        .deploy(refract_test_artifacts::INCIDENT_DETAILS_V1)
        .await;
    let v2 = daemon
        .deploy(refract_test_artifacts::INCIDENT_DETAILS_V2)
        .await;
    assert_eq!(
        (&v1["name"], &v1["version"]),
        (&json!("incident-details"), &json!(1))
    );
    assert_eq!(
        (&v2["name"], &v2["version"]),
        (&json!("incident-details"), &json!(2))
    );

    // Every third incident is marked a duplicate of one or two others after it is logged.
    let mut rng = Rng::new(3);
    let mut native = Vec::new();
    let mut duplicates = 0u64;
    for (n, (id, mut events)) in workload(21, 300).into_iter().enumerate() {
        if n % 3 == 0 {
            for _ in 0..=rng.below(2) {
                let other = format!("incident-{:05}", rng.below(300));
                events.insert(
                    1,
                    ("IncidentDuplicated".to_owned(), json!({"other_id": other})),
                );
                duplicates += 1;
            }
        }
        let (code, body) = daemon.append(&id, Some(0), &events).await;
        assert_eq!(code, 200, "{body}");
        let first = body["first_sequence"].as_i64().expect("sequence");
        for (i, (ty, data)) in events.iter().enumerate() {
            native.push(sdk_event(first + i as i64, &id, i as u64 + 1, ty, data));
        }
    }
    let head = native.len() as i64;

    let p1 = daemon
        .wait_caught_up("incident-details", 1, head, Duration::from_secs(60))
        .await;
    let p2 = daemon
        .wait_caught_up("incident-details", 2, head, Duration::from_secs(60))
        .await;
    assert_eq!(
        p1["events_skipped"], duplicates,
        "v1 counts what it skipped: {p1}"
    );
    assert_eq!(p1["events_applied"], head as u64 - duplicates);
    assert_eq!(
        (&p2["events_skipped"], &p2["events_applied"]),
        (&json!(0), &json!(head))
    );
    assert!(p1["error"].is_null() && p2["error"].is_null(), "{p1} {p2}");

    let want1 =
        refract_guest::testing::project::<incident_details::IncidentDetailsProjection>(&native)
            .expect("v1 fold");
    let want2 =
        refract_guest::testing::project::<incident_details_v2::IncidentDetailsProjection>(&native)
            .expect("v2 fold");
    let mut with_duplicates = 0;
    for (id, want) in &want1 {
        let (_, got1) = daemon
            .get(&format!(
                "/projections/incident-details/docs/{id}?version=1"
            ))
            .await;
        assert_eq!(&got1, want, "v1 document {id}");
        assert!(
            got1.get("duplicate_ids").is_none(),
            "v1 has no duplicate_ids: {got1}"
        );
        let (_, got2) = daemon
            .get(&format!(
                "/projections/incident-details/docs/{id}?version=2"
            ))
            .await;
        assert_eq!(&got2, &want2[id], "v2 document {id}");
        if got2["duplicate_ids"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
        {
            with_duplicates += 1;
        }
        // Apart from the new field, the versions agree.
        let mut stripped = got2.clone();
        stripped.as_object_mut().map(|o| o.remove("duplicate_ids"));
        assert_eq!(stripped, got1, "{id}");
    }
    assert_eq!(
        with_duplicates, 100,
        "every third of 300 incidents has duplicates"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_roll_back_retire_and_all_of_it_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // Small pages: v2 takes a while to catch up, long enough to be refused a promote.
    let config = "page_size = 5\n";
    let daemon = Daemon::start(&data, Some(config));
    let v1 = daemon
        .deploy(refract_test_artifacts::INCIDENT_DETAILS_V1)
        .await;
    assert_eq!(v1["state"], "live", "the first version serves at once");
    let mut head = 0;
    for (n, (id, mut events)) in workload(5, 600).into_iter().enumerate() {
        if n % 2 == 0 {
            events.insert(
                1,
                (
                    "IncidentDuplicated".to_owned(),
                    json!({"other_id": "incident-00001"}),
                ),
            );
        }
        let (code, body) = daemon.append(&id, Some(0), &events).await;
        assert_eq!(code, 200, "{body}");
        head = body["last_sequence"].as_i64().expect("sequence");
    }
    daemon
        .wait_caught_up("incident-details", 1, head, Duration::from_secs(60))
        .await;

    let v2 = daemon
        .deploy(refract_test_artifacts::INCIDENT_DETAILS_V2)
        .await;
    assert_eq!(v2["state"], "catching-up");
    let d = &daemon;
    let promote = |v: u32, force: bool| {
        let path = format!(
            "/projections/incident-details/versions/{v}/promote{}",
            if force { "?force=true" } else { "" }
        );
        async move { d.request(reqwest::Method::POST, &path, None).await }
    };
    let (code, refused) = promote(2, false).await;
    assert_eq!(code, 409, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or_default()
            .contains("catching up"),
        "{refused}"
    );
    let doc = "/projections/incident-details/docs/incident-00000";
    assert!(
        daemon.get(doc).await.1.get("duplicate_ids").is_none(),
        "v1 still serves"
    );

    let p2 = daemon
        .wait_caught_up("incident-details", 2, head, Duration::from_secs(120))
        .await;
    assert_eq!(p2["state"], "caught-up");
    assert_eq!(promote(2, false).await.0, 200);
    assert_eq!(
        daemon.get(doc).await.1["duplicate_ids"],
        json!(["incident-00001"])
    );
    assert_eq!(
        daemon.projection("incident-details", 1).await["state"],
        "standby"
    );
    // Rollback is a promote of the standby version, and back again.
    assert_eq!(promote(1, false).await.0, 200);
    assert!(daemon.get(doc).await.1.get("duplicate_ids").is_none());
    assert_eq!(
        daemon.projection("incident-details", 2).await["state"],
        "standby"
    );
    assert_eq!(promote(2, false).await.0, 200);

    let retire = |v: u32| {
        let path = format!("/projections/incident-details/versions/{v}/retire");
        async move { d.request(reqwest::Method::POST, &path, None).await }
    };
    let (code, body) = retire(2).await;
    assert_eq!(code, 409, "the live version stays: {body}");
    assert_eq!(retire(1).await.0, 200);
    assert_eq!(
        daemon.get(&format!("{doc}?version=1")).await.0,
        404,
        "v1's documents are gone"
    );
    assert_eq!(
        daemon.projection("incident-details", 1).await["state"],
        "retired"
    );
    assert_eq!(
        promote(1, true).await.0,
        409,
        "a retired version cannot come back"
    );
    drop(daemon);

    let daemon = Daemon::start(&data, Some(config));
    assert_eq!(
        daemon.projection("incident-details", 2).await["state"],
        "live"
    );
    assert_eq!(
        daemon.projection("incident-details", 1).await["state"],
        "retired"
    );
    assert_eq!(
        daemon.get(doc).await.1["duplicate_ids"],
        json!(["incident-00001"])
    );
    assert_eq!(daemon.get(&format!("{doc}?version=1")).await.0, 404);
    assert!(
        !daemon.log().contains("incident-details@v1 position"),
        "no agent for a retired version"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn write_model_reads_are_correct_while_the_version_catches_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Small pages keep v2 catching up for a while over 100,000 events.
    let daemon = std::sync::Arc::new(Daemon::start(
        &dir.path().join("data"),
        Some("page_size = 100\n"),
    ));
    let streams = workload(17, 10_000);
    let mut tasks = tokio::task::JoinSet::new();
    let mut appended = std::collections::HashMap::new();
    for (id, events) in streams {
        let d = daemon.clone();
        tasks.spawn(async move {
            let (code, body) = d.append(&id, Some(0), &events).await;
            assert_eq!(code, 200, "{body}");
            (
                id,
                events,
                body["first_sequence"].as_i64().expect("sequence"),
            )
        });
        while tasks.len() >= 16 {
            let (id, events, first) = tasks.join_next().await.expect("task").expect("append");
            appended.insert(id, (events, first));
        }
    }
    while let Some(done) = tasks.join_next().await {
        let (id, events, first) = done.expect("append");
        appended.insert(id, (events, first));
    }
    let head: usize = appended.values().map(|(e, _)| e.len()).sum();
    assert!(head >= 100_000, "{head} events");

    daemon
        .deploy(refract_test_artifacts::INCIDENT_DETAILS_V2)
        .await;
    let mut rng = Rng::new(9);
    let mut checked_while_behind = 0;
    for _ in 0..40 {
        let id = format!("incident-{:05}", rng.below(10_000));
        let (events, first) = &appended[&id];
        let native: Vec<_> = events
            .iter()
            .enumerate()
            .map(|(i, (ty, data))| sdk_event(first + i as i64, &id, i as u64 + 1, ty, data))
            .collect();
        let want =
            refract_guest::testing::project::<incident_details_v2::IncidentDetailsProjection>(
                &native,
            )
            .expect("fold");
        let behind =
            daemon.projection("incident-details", 2).await["position"].as_i64() < Some(head as i64);
        let (code, got) = daemon
            .get(&format!(
                "/streams/{id}/aggregate/incident-details?version=2"
            ))
            .await;
        assert_eq!(code, 200, "{got}");
        assert_eq!(got["version"], events.len(), "{id}");
        assert_eq!(got["document"], want[&id], "{id}");
        checked_while_behind += usize::from(behind);
    }
    assert!(
        checked_while_behind >= 10,
        "only {checked_while_behind} reads while v2 was behind"
    );

    // The command flow of seed 001: decide on the aggregate, append at its version.
    let (_, agg) = daemon
        .get("/streams/incident-00042/aggregate/incident-details")
        .await;
    let at = agg["version"].as_u64().expect("version");
    let closed = [("IncidentClosed".to_owned(), json!({"closed_by": "agent-1"}))];
    assert_eq!(
        daemon.append("incident-00042", Some(at), &closed).await.0,
        200
    );
    assert_eq!(
        daemon.append("incident-00042", Some(at), &closed).await.0,
        409,
        "stale version"
    );
    let (_, agg) = daemon
        .get("/streams/incident-00042/aggregate/incident-details")
        .await;
    assert_eq!(
        (agg["version"].as_u64(), &agg["document"]["status"]),
        (Some(at + 1), &json!("Closed"))
    );
    // A stream that does not exist yet is at version 0 to a writer.
    assert_eq!(
        daemon.get("/streams/nope/aggregate/incident-details").await,
        (200, json!({"id": "nope", "version": 0, "document": null}))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_promote_happens_once_caught_up_even_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let config = "page_size = 5\n";
    let mut daemon = Daemon::start(&data, Some(config));
    daemon
        .deploy(refract_test_artifacts::INCIDENT_DETAILS_V1)
        .await;
    let mut head = 0;
    for (id, events) in workload(8, 500) {
        let (code, body) = daemon.append(&id, Some(0), &events).await;
        assert_eq!(code, 200, "{body}");
        head = body["last_sequence"].as_i64().expect("sequence");
    }
    let wasm = std::fs::read(refract_test_artifacts::INCIDENT_DETAILS_V2).expect("wasm");
    let (code, v2) = daemon
        .request(
            reqwest::Method::POST,
            "/components?auto_promote=true",
            Some(wasm),
        )
        .await;
    assert_eq!((code, &v2["state"]), (200, &json!("catching-up")), "{v2}");
    // Killed before v2 caught up: the pending promotion is in the registry.
    let behind = daemon.projection("incident-details", 2).await;
    assert!(
        behind["position"].as_i64() < Some(head),
        "v2 must still be behind: {behind}"
    );
    daemon.kill();
    let daemon = Daemon::start(&data, Some(config));
    let p2 = daemon
        .wait_caught_up("incident-details", 2, head, Duration::from_secs(120))
        .await;
    assert_eq!(p2["percent_caught_up"], 100.0);
    let mut state = json!(null);
    for _ in 0..200 {
        state = daemon.projection("incident-details", 2).await["state"].clone();
        if state == "live" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(state, "live", "{}", daemon.log());
    assert_eq!(
        daemon.projection("incident-details", 1).await["state"],
        "standby"
    );
    let (_, doc) = daemon
        .get("/projections/incident-details/docs/incident-00000")
        .await;
    assert!(
        doc.get("duplicate_ids").is_some(),
        "unversioned reads serve v2: {doc}"
    );
}
