//! Hostile guests beside a well-behaved one: each is stopped, retried with a fresh
//! instance after a wait, then paused with an error naming the limit it hit, while
//! the daemon stays up and incident-details keeps up with the appends.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::Daemon;
use crate::common::helpdesk::{sdk_event, workload};

const CONFIG: &str = "[limits]\ncall_timeout_ms = 300\nmemory_bytes = 134217728\n";

/// (component, what its error must say)
fn hostile() -> [(&'static str, &'static str, &'static [&'static str]); 6] {
    use refract_test_artifacts as a;
    [
        (
            a::HOSTILE_LOOP,
            "hostile-loop",
            &["CPU time limit of 300 ms"],
        ),
        (
            a::HOSTILE_ALLOC,
            "hostile-alloc",
            &["memory limit of 128 MiB"],
        ),
        (a::HOSTILE_RECURSION, "hostile-recursion", &["stack limit"]),
        (a::HOSTILE_BIG_RESULT, "hostile-big-result", &["limit"]),
        (
            a::HOSTILE_PANIC,
            "hostile-panic",
            &["panicked", "hostile guest gives up"],
        ),
        (
            a::HOSTILE_WASI,
            "hostile-wasi",
            &["file: denied", "env: denied", "socket: denied"],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_guests_are_stopped_and_named_while_the_good_one_keeps_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut daemon = Daemon::start(&dir.path().join("data"), Some(CONFIG));
    daemon
        .deploy(refract_test_artifacts::INCIDENT_DETAILS_V1)
        .await;
    let daemon_url = daemon.url.clone();

    // Appends arrive steadily while the hostile guests are deployed and fail.
    let appended: Arc<Mutex<Vec<(Instant, i64)>>> = Arc::default();
    let native = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let (appended, native) = (appended.clone(), native.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            for (id, events) in workload(31, 60) {
                let body: Vec<Value> = events
                    .iter()
                    .map(|(t, d)| serde_json::json!({"type": t, "data": d}))
                    .collect();
                let resp: Value = http
                    .post(format!("{daemon_url}/streams/{id}/events"))
                    .json(&serde_json::json!({"expected_version": 0, "events": body}))
                    .send()
                    .await
                    .expect("append")
                    .json()
                    .await
                    .expect("json");
                let first = resp["first_sequence"].as_i64().expect("sequence");
                let last = resp["last_sequence"].as_i64().expect("sequence");
                appended.lock().expect("lock").push((Instant::now(), last));
                {
                    let mut n = native.lock().expect("lock");
                    for (i, (ty, data)) in events.iter().enumerate() {
                        n.push(sdk_event(first + i as i64, &id, i as u64 + 1, ty, data));
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    for (wasm, _, _) in hostile() {
        daemon.deploy(wasm).await;
    }

    // How long each append takes to be projected by incident-details.
    let mut worst = Duration::ZERO;
    let mut seen = 0;
    while !writer.is_finished() || seen < appended.lock().expect("lock").len() {
        let position = daemon.projection("incident-details", 1).await["position"]
            .as_i64()
            .unwrap_or(0);
        let now = Instant::now();
        let list = appended.lock().expect("lock").clone();
        while seen < list.len() && list[seen].1 <= position {
            seen += 1;
        }
        if let Some((at, _)) = list.get(seen) {
            worst = worst.max(now - *at);
        }
        assert!(
            worst < Duration::from_secs(1),
            "incident-details fell {worst:?} behind"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("incident-details: worst append-to-projected delay {worst:?}");

    for (_, name, expected) in hostile() {
        let started = Instant::now();
        let p = loop {
            let p = daemon.projection(name, 1).await;
            if p["status"] == "paused" {
                break p;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{name} not paused: {p}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let message = p["error"]["message"].as_str().unwrap_or_default();
        eprintln!("{name}: {message}");
        for needle in expected {
            assert!(
                message.contains(needle),
                "{name}: {needle:?} not in {message:?}"
            );
        }
        assert!(!message.contains("ACCESS GRANTED"), "{name}: {message}");
        assert_eq!(p["error"]["fault"], "guest", "{p}");
        // The failing page was narrowed to its first event (each narrowing a
        // failure), which was then tried three times.
        let errors = p["metrics"]["errors"].as_u64().unwrap_or(0);
        assert!(errors >= 3, "tried three times: {p}");
        if let Some(seq) = p["error"]["event_sequence"].as_i64() {
            assert_eq!(seq, 1, "{name} failed on the first event alone: {p}");
        } else {
            assert!(
                message.contains("events 1..=1"),
                "{name}: one event alone: {p}"
            );
        }
    }
    let log = daemon.log();
    assert!(
        log.contains("line 0 from the guest"),
        "guest stdout reaches the log"
    );
    assert!(
        log.contains("guest output beyond 16384 bytes is dropped"),
        "and is capped"
    );
    assert!(!log.contains("line 4999 from the guest"), "capped");
    assert!(
        log.contains("retrying with a fresh instance"),
        "failing guests are retried after a wait"
    );
    assert!(daemon.is_running(), "the daemon stays up");
    for (name, limit) in [
        ("hostile-loop", "cpu"),
        ("hostile-alloc", "memory"),
        ("hostile-recursion", "stack"),
    ] {
        let p = daemon.projection(name, 1).await;
        // Narrowing hits the limit too: at least the three tries of one event.
        let hits = p["metrics"]["limit_hits"][limit].as_u64().unwrap_or(0);
        assert!(hits >= 3, "{name}: {p}");
        assert_eq!(
            hits,
            p["metrics"]["errors"].as_u64().unwrap_or(0),
            "{name}: {p}"
        );
    }
    let good = daemon.projection("incident-details", 1).await;
    assert_eq!(good["metrics"]["errors"], 0, "{good}");
    assert!(good["metrics"]["events"].as_u64() > Some(0), "{good}");
    let events = native.lock().expect("lock").clone();
    let want =
        refract_guest::testing::project::<incident_details::IncidentDetailsProjection>(&events)
            .expect("fold");
    for (id, doc) in want {
        let (_, got) = daemon
            .get(&format!("/projections/incident-details/docs/{id}"))
            .await;
        assert_eq!(got, doc, "{id}");
    }
}
