//! Crash safety: SIGKILL the daemon while it projects, restart it on the same data
//! directory, and get exactly the documents of an uninterrupted run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use incident_details::IncidentDetailsProjection;
use serde_json::json;

use crate::common::Daemon;
use crate::common::helpdesk::{sdk_event, workload};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_while_projecting_then_restart_gives_identical_documents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // Small pages: many commits, so the kill lands between two of them.
    let config = "page_size = 20\n";
    let mut daemon = Daemon::start(&data, Some(config));

    let streams = workload(11, 1500);
    let d = Arc::new(daemon.url.clone());
    let mut native = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for (id, events) in streams.clone() {
        let url = d.clone();
        tasks.spawn(async move {
            let events_json: Vec<_> = events
                .iter()
                .map(|(t, data)| json!({"type": t, "data": data}))
                .collect();
            let resp = reqwest::Client::new()
                .post(format!("{url}/streams/{id}/events"))
                .json(&json!({"expected_version": 0, "events": events_json}))
                .send()
                .await
                .expect("append");
            assert_eq!(resp.status(), 200);
            let body: serde_json::Value = resp.json().await.expect("json");
            (id, events, body["first_sequence"].as_i64().expect("seq"))
        });
        if tasks.len() >= 16 {
            collect(tasks.join_next().await, &mut native);
        }
    }
    while let Some(done) = tasks.join_next().await {
        collect(Some(done), &mut native);
    }
    native.sort_by_key(|e| e.sequence);
    let head = native.len() as i64;

    daemon
        .deploy(refract_test_artifacts::INCIDENT_DETAILS_V1)
        .await;
    daemon.deploy(refract_test_artifacts::STREAM_COUNTER).await;
    let started = Instant::now();
    let killed_at = loop {
        let p = daemon.projection("incident-details", 1).await;
        let pos = p["position"].as_i64().unwrap_or(0);
        if pos > 0 && pos < head {
            daemon.kill();
            break pos;
        }
        assert!(
            pos < head,
            "projected everything before the kill could land; raise the workload"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no progress: {p}\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    assert!(killed_at < head);

    let daemon = Daemon::start(&data, Some(config));
    let p = daemon
        .wait_caught_up("incident-details", 1, head, Duration::from_secs(120))
        .await;
    assert_eq!(
        p["events_applied"], head,
        "every event applied exactly once: {p}"
    );
    let c = daemon
        .wait_caught_up("stream-counter", 1, head, Duration::from_secs(120))
        .await;
    assert_eq!(c["events_applied"], head);
    let log = daemon.log();
    assert!(
        log.contains("restored") && log.contains("from_cache=true"),
        "the restart loads components from the artifact cache:\n{log}"
    );

    let expected =
        refract_guest::testing::project::<IncidentDetailsProjection>(&native).expect("fold");
    for (id, want) in &expected {
        let (code, got) = daemon
            .get(&format!("/projections/incident-details/docs/{id}"))
            .await;
        assert_eq!((code, &got), (200, want), "document {id}");
    }
    for (id, events) in &streams {
        let (code, got) = daemon
            .get(&format!("/projections/stream-counter/docs/{id}"))
            .await;
        assert_eq!(code, 200, "{id}: {got}");
        assert_eq!(
            got["total"],
            events.len(),
            "{id} counted once per event: {got}"
        );
    }
}

type Appended = (String, Vec<(String, serde_json::Value)>, i64);

fn collect(
    done: Option<Result<Appended, tokio::task::JoinError>>,
    native: &mut Vec<refract_guest::Event>,
) {
    let Some(done) = done else { return };
    let (id, events, first) = done.expect("append task");
    for (i, (ty, data)) in events.iter().enumerate() {
        native.push(sdk_event(first + i as i64, &id, i as u64 + 1, ty, data));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_one_data_dir_exits_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut first = Daemon::start(&data, None);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_refract"))
        .arg("serve")
        .arg("--data-dir")
        .arg(&data)
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("REFRACT_STORE")
        .output()
        .expect("run a second refract");
    assert!(!out.status.success(), "a second daemon ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("another refract process") && stderr.contains("is serving data dir"),
        "{stderr}"
    );
    // The first goes on; once it is gone, the directory is free again.
    let (code, _) = first.get("/healthz").await;
    assert_eq!(code, 200);
    first.kill();
    let again = Daemon::start(&data, None);
    let (code, _) = again.get("/healthz").await;
    assert_eq!(code, 200);
}
