//! Attacks on the sandbox's clock (issue 11, point 1): a guest that sleeps must cost
//! CPU time and meet the deadline like a busy loop, never hold a thread, a deploy,
//! a request or shutdown; request-driven guest calls are capped per team. Each runs
//! beside a well-behaved team (the bystander).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::Daemon;
use crate::common::bystander::Bystander;

/// The daemon's peak resident memory during these attacks.
const RSS_BOUND: u64 = 512 << 20;

/// Team `evil` gets half a second per call and two request-driven calls at once.
const CONFIG: &str = r#"
[teams.good]
token = "good-token"
[teams.evil]
token = "evil-token"
max_concurrent_calls = 2
[teams.evil.limits]
call_timeout_ms = 500
[teams.other]
token = "other-token"
"#;

const GOOD: Option<&str> = Some("good-token");
const EVIL: Option<&str> = Some("evil-token");
const OTHER: Option<&str> = Some("other-token");

/// Deploys `wasm` as `token`'s team.
async fn deploy(d: &Daemon, token: Option<&str>, wasm: &str) -> (u16, Value) {
    let bytes = std::fs::read(wasm).expect("read component");
    d.request_as(token, Method::POST, "/components", Some(bytes))
        .await
}

/// Appends one event as `token`'s team; returns its sequence.
async fn append(d: &Daemon, token: Option<&str>, stream: &str, ty: &str, data: Value) -> i64 {
    let body = json!({"events": [{"type": ty, "data": data}]});
    let (status, out) = d
        .request_as(
            token,
            Method::POST,
            &format!("/streams/{stream}/events"),
            Some(body.to_string().into_bytes()),
        )
        .await;
    assert_eq!(status, 200, "append to {stream}: {out}");
    out["last_sequence"].as_i64().expect("sequence")
}

/// The status row of `token`'s `name` v1.
async fn status(d: &Daemon, token: Option<&str>, name: &str) -> Value {
    let (code, list) = d
        .request_as(token, Method::GET, "/projections", None)
        .await;
    assert_eq!(code, 200, "{list}");
    list.as_array()
        .and_then(|l| l.iter().find(|p| p["name"] == name).cloned())
        .unwrap_or_else(|| panic!("{name} not in {list}"))
}

/// Waits (up to `limit`) until `token`'s `name` is paused; returns its row.
async fn wait_paused(d: &Daemon, token: Option<&str>, name: &str, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let p = status(d, token, name).await;
        if p["status"] == "paused" {
            return p;
        }
        assert!(started.elapsed() < limit, "{name} not paused: {p}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Microseconds since the epoch of an RFC 3339 time the API served.
fn micros(rfc3339: &Value) -> i64 {
    let text = rfc3339.as_str().expect("a time");
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339");
    (t.unix_timestamp_nanos() / 1000) as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_guest_that_sleeps_in_apply_costs_cpu_time_and_is_paused_by_the_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut d = Daemon::start(&dir.path().join("data"), Some(CONFIG));
    let by = Bystander::start(&d, GOOD).await;
    let (code, body) = deploy(&d, EVIL, refract_test_artifacts::HOSTILE_SLEEP).await;
    assert_eq!(code, 200, "{body}");

    // One long nap simply returns at once: the virtual clock moved an hour, the
    // wall clock is the event's time plus the hour.
    let started = Instant::now();
    append(&d, EVIL, "nap-1", "Nap", json!({"secs": 3600})).await;
    let doc = loop {
        let (code, doc) = d
            .request_as(
                EVIL,
                Method::GET,
                "/projections/hostile-sleep/docs/nap-1",
                None,
            )
            .await;
        if code == 200 {
            break doc;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{doc}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "an hour's nap took {:?}",
        started.elapsed()
    );
    assert_eq!(doc["naps"], 1, "{doc}");
    assert_eq!(doc["slept_secs"], 3600, "{doc}");
    let (_, events) = d
        .request_as(EVIL, Method::GET, "/streams/nap-1", None)
        .await;
    let recorded = micros(&events["events"][0]["timestamp"]);
    assert_eq!(
        doc["wall_micros"].as_i64(),
        Some(recorded + 3_600_000_000),
        "the wall clock is the event's time plus the nap: {doc} {events}"
    );

    // A loop of one-second sleeps is a busy loop: paused by the CPU deadline, with
    // an error naming the component and the limit.
    let started = Instant::now();
    append(&d, EVIL, "insomnia-1", "Insomnia", json!({})).await;
    let p = wait_paused(&d, EVIL, "hostile-sleep", Duration::from_secs(30)).await;
    let message = p["error"]["message"].as_str().unwrap_or_default();
    let component = p["error"]["component"].as_str().unwrap_or_default();
    eprintln!("paused after {:?}: {component}: {message}", started.elapsed());
    assert!(
        message.contains("CPU time limit of 500 ms"),
        "{message:?} ({p})"
    );
    assert!(component.contains("hostile-sleep"), "{p}");
    assert_eq!(p["error"]["fault"], "guest", "{p}");
    assert!(p["metrics"]["limit_hits"]["cpu"].as_u64() >= Some(1), "{p}");

    let report = by.finish(&d).await;
    report.assert_p99_below(Duration::from_millis(100));
    d.assert_peak_rss_below(RSS_BOUND);
    d.sigterm_within(Duration::from_secs(10));
}
