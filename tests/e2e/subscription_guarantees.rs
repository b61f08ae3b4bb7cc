//! Issue 10's subscription guarantees, against a real daemon: a bad emit is the
//! guest's error at the call (paused, the status naming the field); emit conflicts
//! back off and pause after the attempts; a rewound or rebuilt subscription whose
//! emits carry no key emits nothing twice (decided per event); a standby emits
//! nothing; a WIT 1.0.0 guest still runs.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::Daemon;

/// The probe's config: its `mode`, attempts, and anything else.
pub(crate) fn config(mode: &str, extra: &str) -> String {
    format!(
        "[components.emit-probe]\nattempts = 2\n[components.emit-probe.settings]\nmode = \"{mode}\"\n{extra}"
    )
}

/// Appends `n` `Poke`s, each to its own stream `poke-<tag>-<i>`.
pub(crate) async fn poke(daemon: &Daemon, tag: &str, n: usize) {
    for i in 0..n {
        let (code, body) = daemon
            .append(
                &format!("poke-{tag}-{i}"),
                None,
                &[("Poke".into(), json!({}))],
            )
            .await;
        assert_eq!(code, 200, "{body}");
    }
}

/// How many events a stream has.
pub(crate) async fn count(daemon: &Daemon, stream: &str) -> usize {
    let (code, body) = daemon.get(&format!("/streams/{stream}")).await;
    if code == 404 {
        return 0;
    }
    assert_eq!(code, 200, "{stream}: {body}");
    body["events"].as_array().map_or(0, Vec::len)
}

/// Waits until the version has handled everything and stays there for a while.
pub(crate) async fn settled(daemon: &Daemon, version: u32) -> Value {
    let started = Instant::now();
    let mut still = 0;
    loop {
        let p = daemon.projection("emit-probe", version).await;
        assert!(p["status"] != "paused", "paused: {p}\n{}", daemon.log());
        still = if p["position"] == p["head"] {
            still + 1
        } else {
            0
        };
        if still >= 10 {
            return p;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not settled: {p}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the version pauses; returns its status.
pub(crate) async fn paused(daemon: &Daemon, version: u32, within: Duration) -> Value {
    let started = Instant::now();
    loop {
        let p = daemon.projection("emit-probe", version).await;
        if p["status"] == "paused" {
            return p;
        }
        assert!(
            started.elapsed() < within,
            "not paused after {within:?}: {p}\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn post(daemon: &Daemon, path: &str) -> Value {
    let (code, body) = daemon.post_json(path, &json!({})).await;
    assert_eq!(code, 200, "{path}: {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emit_with_an_invalid_type_pauses_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), Some(&config("bad-type", "")));
    daemon.deploy(refract_test_artifacts::EMIT_PROBE).await;
    poke(&daemon, "a", 1).await;
    let p = paused(&daemon, 1, Duration::from_secs(30)).await;
    let message = p["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("emit to out: events[0]") && message.contains("event_type"),
        "the error names the event and the field: {p}"
    );
    assert_eq!(p["error"]["fault"], "guest", "{p}");
    assert_eq!(p["position"], 0, "nothing of the page committed: {p}");
    assert_eq!(count(&daemon, "out").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emit_over_the_maximum_event_size_is_a_guest_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The default maximum (1 MiB) against 2 MiB of data.
    let daemon = Daemon::start(&dir.path().join("data"), Some(&config("big", "")));
    daemon.deploy(refract_test_artifacts::EMIT_PROBE).await;
    poke(&daemon, "a", 1).await;
    let p = paused(&daemon, 1, Duration::from_secs(30)).await;
    let message = p["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("events[0]") && message.contains("maximum event size is 1048576 bytes"),
        "{p}"
    );
    assert_eq!(count(&daemon, "out").await, 0);

    // Configurable: a smaller maximum refuses a smaller event.
    let dir = tempfile::tempdir().expect("tempdir");
    let small = config("big", "bytes = \"2000\"\n");
    let small = format!("max_event_bytes = 1000\n{small}");
    let daemon = Daemon::start(&dir.path().join("data"), Some(&small));
    daemon.deploy(refract_test_artifacts::EMIT_PROBE).await;
    poke(&daemon, "a", 1).await;
    let p = paused(&daemon, 1, Duration::from_secs(30)).await;
    assert!(
        p["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("is 1000 bytes"),
        "{p}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn emit_conflicts_back_off_and_pause_after_the_attempts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), Some(&config("conflict", "")));
    daemon.deploy(refract_test_artifacts::EMIT_PROBE).await;
    // Someone else keeps appending to `hot`: every handling's emit conflicts at commit.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let appender = {
        let (stop, url) = (stop.clone(), format!("{}/streams/hot/events", daemon.url));
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let body = json!({"events": [{"type": "Other", "data": {}}]}).to_string();
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let sent = http.post(&url).body(body.clone()).send().await;
                n += u64::from(sent.is_ok_and(|r| r.status() == 200));
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    poke(&daemon, "a", 1).await;
    let p = paused(&daemon, 1, Duration::from_secs(30)).await;
    let took = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let appended = appender.await.expect("appender");
    assert!(appended > 10, "the appender ran: {appended}");
    let message = p["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("emit conflict"), "{p}");
    // Two attempts, a backoff (50 ms) between them: not a tight loop of re-handles.
    assert!(took >= Duration::from_millis(50), "{took:?}");
    let tries = daemon.log().matches("page failed, retrying").count();
    assert_eq!(
        tries,
        1,
        "attempts = 2: one retry, then the pause\n{}",
        daemon.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewound_or_rebuilt_subscription_emits_nothing_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut daemon = Daemon::start(&data, Some(&config("echo", "")));
    daemon.deploy(refract_test_artifacts::EMIT_PROBE).await;
    poke(&daemon, "a", 25).await;
    settled(&daemon, 1).await;
    assert_eq!(count(&daemon, "echo").await, 25);

    // Five more pokes the version has not handled (it fails on them), then a rewind:
    // the replay's third page (pokes 21..30, 10 a page) straddles the furthest
    // position it ever committed. Pokes 21..25 stay held, 26..30 are emitted.
    daemon.kill();
    daemon = Daemon::start(&data, Some(&config("bad-type", "")));
    poke(&daemon, "b", 5).await;
    paused(&daemon, 1, Duration::from_secs(30)).await;
    post(&daemon, "/projections/emit-probe/versions/1/rewind?to=0").await;
    paused(&daemon, 1, Duration::from_secs(30)).await;
    daemon.kill();
    daemon = Daemon::start(&data, Some(&config("echo", "")));
    let p = settled(&daemon, 1).await;
    assert_eq!(
        count(&daemon, "echo").await,
        30,
        "each poke echoed once: {p}"
    );
    assert!(p["effects_held"].as_u64().unwrap_or(0) >= 25, "{p}");

    // A rebuild starts again from the first event: everything is held.
    post(&daemon, "/projections/emit-probe/versions/1/rebuild").await;
    settled(&daemon, 1).await;
    assert_eq!(
        count(&daemon, "echo").await,
        30,
        "nothing twice after a rebuild"
    );

    // Asked for, a replay performs the effects again.
    post(
        &daemon,
        "/projections/emit-probe/versions/1/rewind?to=0&effects=replay",
    )
    .await;
    settled(&daemon, 1).await;
    assert_eq!(
        count(&daemon, "echo").await,
        60,
        "effects=replay emits again"
    );
    let (code, body) = daemon
        .post_json(
            "/projections/emit-probe/versions/1/rewind?effects=twice",
            &json!({}),
        )
        .await;
    assert_eq!(code, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_emits_nothing_and_a_wit_1_0_guest_still_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), Some(&config("echo", "")));
    daemon.deploy(refract_test_artifacts::EMIT_PROBE).await;
    poke(&daemon, "a", 10).await;
    settled(&daemon, 1).await;
    assert_eq!(count(&daemon, "echo").await, 10);

    // Version 2 is built against WIT 1.0.0: it loads and runs, held through v1's history.
    daemon.deploy(refract_test_artifacts::EMIT_PROBE_V100).await;
    let p2 = settled(&daemon, 2).await;
    assert_eq!(p2["effects_held"], 10, "{p2}");
    assert_eq!(
        (&p2["wit"], &p2["page_size"]),
        (&json!("1.0.0"), &json!(5000)),
        "{p2}"
    );
    let p1 = daemon.projection("emit-probe", 1).await;
    assert_eq!(
        (&p1["wit"], &p1["page_size"]),
        (&json!("1.1.0"), &json!(10)),
        "{p1}"
    );
    assert_eq!(count(&daemon, "echo").await, 10);
    post(&daemon, "/projections/emit-probe/versions/2/promote").await;
    let p1 = daemon.projection("emit-probe", 1).await;
    assert_eq!(p1["state"], "standby", "{p1}");

    // Only the live version (the 1.0.0 guest) acts; the standby keeps running, held.
    poke(&daemon, "b", 12).await;
    settled(&daemon, 2).await;
    let p1 = settled(&daemon, 1).await;
    assert_eq!(
        count(&daemon, "echo").await,
        22,
        "v1 (standby) emitted nothing: {p1}"
    );
    assert!(p1["effects_held"].as_u64().unwrap_or(0) >= 12, "{p1}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_reads_are_paged_and_a_whole_stream_read_is_capped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), Some(&config("count", "")));
    daemon.deploy(refract_test_artifacts::EMIT_PROBE).await;
    let items: Vec<(String, Value)> = (0..10_001).map(|_| ("Item".into(), json!({}))).collect();
    let (code, body) = daemon.append("long", Some(0), &items).await;
    assert_eq!(code, 200, "{body}");
    poke(&daemon, "a", 1).await;
    settled(&daemon, 1).await;
    let (code, body) = daemon.get("/streams/counts").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["events"][0]["data"]["events"], 10_001,
        "read in pages: {body}"
    );

    // A 1.0.0 guest reads whole streams: refused past 10,000 events, its error.
    daemon.deploy(refract_test_artifacts::EMIT_PROBE_V100).await;
    let p2 = paused(&daemon, 2, Duration::from_secs(30)).await;
    let message = p2["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("has more than 10000 events"), "{p2}");
}
