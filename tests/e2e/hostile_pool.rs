//! Shared resources under attack (issue 11, point 7): thousands of components in one
//! daemon, a team that fills its instance slots beside a team that keeps working,
//! and code nobody runs any more leaving the data directory.
//!
//! The components are copies of `bulk-counter` whose name (a fixed-width placeholder
//! in the .wasm bytes) is patched, so each copy is a distinct component.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::common::Daemon;
use crate::common::bystander::Bystander;

/// The name placeholder in the built `bulk-counter` component.
const PLACEHOLDER: &[u8] = b"bulk-XXXXXX";

/// Components deployed at once by the bulk test (`REFRACT_POOL_COMPONENTS` lowers it
/// for a quick local run).
const COMPONENTS: usize = 2_000;

/// Peak resident memory of the daemon running 2,000 deployed versions (and the
/// bystander): measured 777 MiB (~390 KiB a version: compiled code, agent, SQLite
/// schema; no instance is held while idle). Before, every running version held an
/// instance for good, and past ~255 the pool refused them.
const BULK_RSS_BOUND: u64 = 1 << 30;

/// Peak resident memory in the slot-limit test.
const SLOTS_RSS_BOUND: u64 = 512 << 20;

/// `bulk-counter` with its name replaced by `name` (as long as the placeholder).
fn named(base: &[u8], name: &str) -> Vec<u8> {
    assert_eq!(
        name.len(),
        PLACEHOLDER.len(),
        "{name}: same width as the placeholder"
    );
    let at: Vec<usize> = base
        .windows(PLACEHOLDER.len())
        .enumerate()
        .filter(|(_, w)| *w == PLACEHOLDER)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        at.len(),
        1,
        "the placeholder occurs exactly once in the component"
    );
    let mut out = base.to_vec();
    out[at[0]..at[0] + PLACEHOLDER.len()].copy_from_slice(name.as_bytes());
    out
}

fn bulk_counter() -> Vec<u8> {
    std::fs::read(refract_test_artifacts::BULK_COUNTER).expect("bulk-counter component")
}

async fn append(d: &Daemon, token: &str, stream: &str, types: &[&str]) -> i64 {
    let events: Vec<Value> = types
        .iter()
        .map(|t| json!({"type": t, "data": {}}))
        .collect();
    let body = json!({"events": events}).to_string().into_bytes();
    let path = format!("/streams/{stream}/events");
    let (status, out) = d
        .request_as(Some(token), Method::POST, &path, Some(body))
        .await;
    assert_eq!(status, 200, "append to {stream}: {out}");
    out["last_sequence"].as_i64().expect("last_sequence")
}

async fn list(d: &Daemon, token: &str) -> Vec<Value> {
    let (status, list) = d
        .request_as(Some(token), Method::GET, "/projections", None)
        .await;
    assert_eq!(status, 200, "{list}");
    list.as_array().cloned().unwrap_or_default()
}

async fn count_of(d: &Daemon, token: &str, name: &str, stream: &str) -> Option<u64> {
    let path = format!("/projections/{name}/docs/{stream}");
    let (status, doc) = d.request_as(Some(token), Method::GET, &path, None).await;
    (status == 200).then(|| doc["count"].as_u64()).flatten()
}

/// Waits (up to `limit`) until `name`'s document for `stream` counts `want`;
/// returns how long that took.
async fn wait_count(
    d: &Daemon,
    token: &str,
    name: &str,
    stream: &str,
    want: u64,
    limit: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        if count_of(d, token, name, stream).await == Some(want) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{name} did not count {want} on {stream} within {limit:?}: {:?}",
            count_of(d, token, name, stream).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The bystander's p99 bound while 2,000 components are deployed (see the test).
const BULK_P99_BOUND: Duration = Duration::from_millis(100);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_components_deployed_at_once_all_run_and_project() {
    let n: usize = std::env::var("REFRACT_POOL_COMPONENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(COMPONENTS);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = "[teams.good]\ntoken = \"good-token\"\n[teams.bulk]\ntoken = \"bulk-token\"\n";
    let mut daemon = Daemon::start(&dir.path().join("data"), Some(config));
    let by = Bystander::start(&daemon, Some("good-token")).await;
    append(&daemon, "bulk-token", "tick-1", &["BulkTick"; 3]).await;

    // Every copy deployed at once (a few requests in flight at a time).
    let base = bulk_counter();
    let names: Vec<String> = (0..n).map(|i| format!("bulk-{i:06}")).collect();
    let gate = Arc::new(tokio::sync::Semaphore::new(16));
    let mut deploys = JoinSet::new();
    let started = Instant::now();
    for name in &names {
        let (wasm, url, gate) = (named(&base, name), daemon.url.clone(), gate.clone());
        let name = name.clone();
        deploys.spawn(async move {
            let _turn = gate.acquire_owned().await.expect("gate");
            let resp = reqwest::Client::new()
                .post(format!("{url}/components"))
                .bearer_auth("bulk-token")
                .body(wasm)
                .send()
                .await
                .expect("deploy reaches the daemon");
            let status = resp.status().as_u16();
            (name, status, resp.text().await.unwrap_or_default())
        });
    }
    while let Some(done) = deploys.join_next().await {
        let (name, status, body) = done.expect("deploy task");
        assert_eq!(status, 200, "deploy {name}: {body}");
    }
    let deploy_time = started.elapsed();

    // New events after the deploys: running versions project them, not only the
    // catch-up at start.
    let head = append(&daemon, "bulk-token", "tick-1", &["BulkTick"; 2]).await;
    let waited = Instant::now();
    loop {
        let rows = list(&daemon, "bulk-token").await;
        assert_eq!(rows.len(), n, "every version is listed");
        let paused: Vec<&Value> = rows.iter().filter(|p| p["status"] != "running").collect();
        assert!(paused.is_empty(), "none pauses: {:?}", paused.first());
        let behind = rows
            .iter()
            .filter(|p| p["position"].as_i64() < Some(head))
            .count();
        if behind == 0 {
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(300),
            "{behind} of {n} versions did not reach {head}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let run_time = waited.elapsed();
    for name in &names {
        assert_eq!(
            count_of(&daemon, "bulk-token", name, "tick-1").await,
            Some(5),
            "{name} projected all five ticks"
        );
    }
    let rss = daemon.peak_rss_bytes();
    eprintln!(
        "pool: {n} components deployed in {deploy_time:?} ({:?} each), all caught up \
         {run_time:?} later; daemon peak RSS {} MiB",
        deploy_time / n as u32,
        rss >> 20
    );
    assert!(
        !daemon.log().contains("maximum concurrent limit"),
        "the pool never ran out"
    );
    let report = by.finish(&daemon).await;
    // The bound: measured 46 ms on 2 quiet cores (226 ms before registry
    // lookups became indexed queries, agents took per-team turns at the store,
    // appends woke only their types' agents and versions' documents moved from a
    // table each, whose CREATE TABLE made every connection re-read the schema, into
    // one shared table).
    report.assert_p99_below(BULK_P99_BOUND);
    daemon.assert_peak_rss_below(BULK_RSS_BOUND);
    daemon.sigterm_within(Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_team_at_its_max_instances_waits_while_another_keeps_projecting_and_deploying() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Team `small` may hold one instance; its spinners hold theirs for a whole CPU
    // deadline per attempt.
    let config = "[teams.good]\ntoken = \"good-token\"\n\
                  [teams.small]\ntoken = \"small-token\"\nmax_instances = 1\n\
                  [teams.small.limits]\ncall_timeout_ms = 3000\n";
    let mut daemon = Daemon::start(&dir.path().join("data"), Some(config));
    let by = Bystander::start(&daemon, Some("good-token")).await;
    append(&daemon, "small-token", "spin-1", &["BulkSpin"]).await;
    append(&daemon, "small-token", "tick-1", &["BulkTick"; 2]).await;

    let base = bulk_counter();
    let deploy = |token: &'static str, name: &str| {
        let wasm = named(&base, name);
        let d = &daemon;
        async move {
            let started = Instant::now();
            let (status, body) = d
                .request_as(Some(token), Method::POST, "/components", Some(wasm))
                .await;
            assert_eq!(status, 200, "deploy: {body}");
            started.elapsed()
        }
    };
    for i in 0..4 {
        deploy("small-token", &format!("bulk-s{i:05}")).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The small team's counter waits for its team's one slot behind the spinners.
    deploy("small-token", "bulk-t00000").await;
    let watcher = {
        let url = daemon.url.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let http = reqwest::Client::new();
            loop {
                let doc: Value = match http
                    .get(format!("{url}/projections/bulk-t00000/docs/tick-1"))
                    .bearer_auth("small-token")
                    .send()
                    .await
                {
                    Ok(r) => r.json().await.unwrap_or(Value::Null),
                    Err(_) => Value::Null,
                };
                if doc["count"] == 2 {
                    return started.elapsed();
                }
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "counter: {doc}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    // Meanwhile the good team deploys and projects as if nothing happened.
    for i in 0..3 {
        let name = format!("bulk-g{i:05}");
        let took = deploy("good-token", &name).await;
        assert!(
            took < Duration::from_secs(10),
            "good deploy {name} took {took:?}"
        );
        let seen = wait_count(
            &daemon,
            "good-token",
            &name,
            "tick-1",
            2,
            Duration::from_secs(5),
        )
        .await;
        eprintln!("slots: good {name} deployed in {took:?}, projected {seen:?} later");
    }
    let waited = watcher.await.expect("counter watcher");
    eprintln!("slots: the small team's counter projected after {waited:?}");
    assert!(
        waited >= Duration::from_millis(1000),
        "the counter waited for the small team's one slot ({waited:?})"
    );

    // The spinners are the guest's fault (their CPU deadline), never the pool's.
    let rows = list(&daemon, "small-token").await;
    for p in rows
        .iter()
        .filter(|p| p["name"].as_str().is_some_and(|n| n.starts_with("bulk-s")))
    {
        if let Some(e) = p["error"].as_object() {
            assert_eq!(e["fault"], "guest", "{p}");
            let message = e["message"].as_str().unwrap_or_default();
            assert!(message.contains("CPU time limit"), "{p}");
        }
    }
    assert!(
        !daemon.log().contains("maximum concurrent limit"),
        "the shared pool never ran out"
    );
    let report = by.finish(&daemon).await;
    report.assert_p99_below(Duration::from_millis(100));
    daemon.assert_peak_rss_below(SLOTS_RSS_BOUND);
    daemon.sigterm_within(Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retired_and_refused_code_leaves_the_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let daemon = Daemon::start(&data, None);
    let files = |sha: &str| -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["components", "cache"] {
            if let Ok(entries) = std::fs::read_dir(data.join(sub)) {
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.starts_with(sha) {
                        out.push(format!("{sub}/{name}"));
                    }
                }
            }
        }
        out
    };

    let v1 = daemon
        .deploy(refract_test_artifacts::INCIDENT_DETAILS_V1)
        .await;
    let v2 = daemon
        .deploy(refract_test_artifacts::INCIDENT_DETAILS_V2)
        .await;
    let (sha1, sha2) = (
        v1["sha256"].as_str().expect("sha"),
        v2["sha256"].as_str().expect("sha"),
    );
    assert_eq!(
        files(sha2).len(),
        2,
        "wasm and artifact of v2: {:?}",
        files(sha2)
    );

    // A refused upload (same name and version, other code) leaves nothing behind,
    // although it compiled: a custom section makes other bytes of the same component.
    let mut other = std::fs::read(refract_test_artifacts::INCIDENT_DETAILS_V1).expect("wasm");
    other.extend_from_slice(&[0, 6, 4, b's', b'a', b'l', b't', b'1']);
    let (status, body) = daemon
        .request(Method::POST, "/components", Some(other.clone()))
        .await;
    assert_eq!(status, 409, "{body}");
    let refused = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&other))
    };
    assert_eq!(
        files(&refused),
        Vec::<String>::new(),
        "refused code removed"
    );

    // Retiring v2 removes its code; v1 (live) keeps its own.
    let (status, body) = daemon
        .request(
            Method::POST,
            "/projections/incident-details/versions/2/retire",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(files(sha2), Vec::<String>::new(), "retired code removed");
    assert_eq!(files(sha1).len(), 2, "live code kept: {:?}", files(sha1));
}
