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

/// Team `evil` gets half a second per call and one request-driven call at once.
const CONFIG: &str = r#"
[teams.good]
token = "good-token"
[teams.evil]
token = "evil-token"
max_concurrent_calls = 1
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
    let (code, list) = d.request_as(token, Method::GET, "/projections", None).await;
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
    // Deployed (compiled) before the bystander starts: the attack measured is the
    // sleeping, not the upload's compilation.
    let (code, body) = deploy(&d, EVIL, refract_test_artifacts::HOSTILE_SLEEP).await;
    assert_eq!(code, 200, "{body}");
    let by = Bystander::start(&d, GOOD).await;

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
    eprintln!(
        "paused after {:?}: {component}: {message}",
        started.elapsed()
    );
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

/// Team `other` deploys hostile-sleep (compiled already) and promotes it.
async fn other_team_deploys_and_promotes(d: &Daemon) {
    let (code, body) = deploy(d, OTHER, refract_test_artifacts::HOSTILE_SLEEP).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = d
        .request_as(
            OTHER,
            Method::POST,
            "/projections/hostile-sleep/versions/1/promote",
            None,
        )
        .await;
    assert_eq!(code, 200, "{body}");
}

/// Team `slow` describes for four seconds before its deadline stops it.
const SLOW_CONFIG: &str = r#"
[teams.good]
token = "good-token"
[teams.slow]
token = "slow-token"
[teams.slow.limits]
call_timeout_ms = 4000
[teams.other]
token = "other-token"
[teams.warm]
token = "warm-token"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_guest_that_sleeps_in_describe_is_refused_and_holds_no_other_deploy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut d = Daemon::start(&dir.path().join("data"), Some(SLOW_CONFIG));
    let slow = Some("slow-token");
    // Both uploads are compiled before the bystander starts (the attack measured is
    // the sleeping describe, not compilation): the sleeper's first deploy is refused
    // all the same, and the other team's component handles no event the bystander
    // appends.
    let (code, body) = deploy(&d, slow, refract_test_artifacts::HOSTILE_SLEEP_DESCRIBE).await;
    assert_eq!(code, 400, "{body}");
    let warm = Some("warm-token");
    let (code, body) = deploy(&d, warm, refract_test_artifacts::HOSTILE_SLEEP).await;
    assert_eq!(code, 200, "{body}");
    let by = Bystander::start(&d, GOOD).await;

    let started = Instant::now();
    let attack = {
        let url = d.url.clone();
        tokio::spawn(async move {
            let wasm = std::fs::read(refract_test_artifacts::HOSTILE_SLEEP_DESCRIBE).expect("wasm");
            let resp = reqwest::Client::new()
                .post(format!("{url}/components"))
                .bearer_auth("slow-token")
                .body(wasm)
                .send()
                .await
                .expect("deploy answered");
            let code = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            (code, body, started.elapsed())
        })
    };
    // Give the attack time to reach its describe.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Meanwhile another team deploys (compiled already) and runs lifecycle calls,
    // promptly.
    let t = Instant::now();
    other_team_deploys_and_promotes(&d).await;
    let (code, body) = d
        .request_as(
            OTHER,
            Method::POST,
            "/projections/hostile-sleep/versions/1/rebuild",
            None,
        )
        .await;
    assert!(code == 200 || code == 202, "{code} {body}");
    let others = t.elapsed();
    assert!(
        others < Duration::from_millis(2500),
        "another team's deploy and lifecycle calls took {others:?} beside a sleeping describe"
    );
    assert!(
        !attack.is_finished(),
        "the sleeping describe was still running meanwhile"
    );

    let (code, body, took) = attack.await.expect("attack task");
    eprintln!("sleeping describe refused after {took:?}: {body}; others took {others:?}");
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["code"], "invalid", "{body}");
    let message = body["error"].as_str().unwrap_or_default();
    assert!(message.contains("CPU time limit of 4000 ms"), "{message}");
    assert!(message.contains("(in describe)"), "{message}");
    // Four seconds of CPU: with other long calls sharing the lane (and the
    // compile before it) the wall time is longer, but bounded.
    assert!(took < Duration::from_secs(30), "refused after {took:?}");
    let (_, list) = d.request_as(slow, Method::GET, "/projections", None).await;
    assert_eq!(list, json!([]), "nothing was deployed");

    let report = by.finish(&d).await;
    report.assert_p99_below(Duration::from_millis(100));
    d.assert_peak_rss_below(RSS_BOUND);

    // SIGTERM while another sleeping describe runs.
    let url = d.url.clone();
    let again = tokio::spawn(async move {
        let wasm = std::fs::read(refract_test_artifacts::HOSTILE_SLEEP_DESCRIBE).expect("wasm");
        let _ = reqwest::Client::new()
            .post(format!("{url}/components"))
            .bearer_auth("slow-token")
            .body(wasm)
            .send()
            .await;
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    d.sigterm_within(Duration::from_secs(10));
    again.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pause_waiting_out_its_teams_long_page_holds_no_other_teams_deploy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut d = Daemon::start(&dir.path().join("data"), Some(SLOW_CONFIG));
    let slow = Some("slow-token");
    // Compiled before the attack: both teams deploy the same code.
    let (code, body) = deploy(&d, slow, refract_test_artifacts::HOSTILE_SLEEP).await;
    assert_eq!(code, 200, "{body}");
    // A page that loops until its 4 s deadline; a pause asked meanwhile waits for it
    // under the slow team's deploy lock.
    append(&d, slow, "insomnia-1", "Insomnia", json!({})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let pause = {
        let url = d.url.clone();
        tokio::spawn(async move {
            let resp = reqwest::Client::new()
                .post(format!("{url}/projections/hostile-sleep/versions/1/pause"))
                .bearer_auth("slow-token")
                .send()
                .await
                .expect("pause answered");
            (resp.status().as_u16(), started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    let t = Instant::now();
    // (Not a pause or a rebuild: those wait for the other team's own page, which
    // loops on the same event.)
    other_team_deploys_and_promotes(&d).await;
    let others = t.elapsed();
    let waiting = !pause.is_finished();
    let (code, took) = pause.await.expect("pause task");
    eprintln!("slow team's pause took {took:?}; the other team's deploy and promote {others:?}");
    assert_eq!(code, 200, "the slow team's pause");
    assert!(
        waiting,
        "the slow team's pause was still waiting for its page meanwhile"
    );
    assert!(
        others < Duration::from_millis(1500),
        "another team's deploy and promote took {others:?} beside a pause waiting out a page"
    );
    d.sigterm_within(Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn six_hundred_aggregates_against_a_sleeping_projection_are_all_answered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut d = Daemon::start(&dir.path().join("data"), Some(CONFIG));
    // Deployed (compiled) before the bystander starts: the attack measured is the
    // sleeping, not the upload's compilation.
    let (code, body) = deploy(&d, EVIL, refract_test_artifacts::HOSTILE_SLEEP).await;
    assert_eq!(code, 200, "{body}");
    let by = Bystander::start(&d, GOOD).await;
    append(&d, EVIL, "insomnia-1", "Insomnia", json!({})).await;
    // Its agent stops at the sleeping event (the attack here is the reads).
    wait_paused(&d, EVIL, "hostile-sleep", Duration::from_secs(30)).await;

    // Every aggregate read of the stream applies the sleeping event through the
    // guest: each is a guest call that sleeps until its deadline.
    let started = Instant::now();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    // The attacker's client runs on its own runtime, so the measuring bystander
    // (on the test's) is not starved by the test process's 600 tasks.
    let url = format!("{}/streams/insomnia-1/aggregate/hostile-sleep", d.url);
    let attacker_http = http.clone();
    let attacker = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("attacker runtime");
        rt.block_on(async move {
            let reads: Vec<_> = (0..600)
                .map(|_| {
                    let (http, url) = (attacker_http.clone(), url.clone());
                    tokio::spawn(async move {
                        let t = Instant::now();
                        let resp = http
                            .get(url)
                            .bearer_auth("evil-token")
                            .send()
                            .await
                            .expect("answered");
                        let code = resp.status().as_u16();
                        let body: Value = resp.json().await.unwrap_or(Value::Null);
                        (code, body, t.elapsed())
                    })
                })
                .collect();
            let mut out = Vec::new();
            for read in reads {
                out.push(read.await.expect("read task"));
            }
            out
        })
    });
    let reads = tokio::task::spawn_blocking(move || attacker.join().expect("attacker"))
        .await
        .expect("attacker thread");
    let mut counts = std::collections::BTreeMap::<(u16, String), usize>::new();
    let (mut slowest, mut slowest_busy) = (Duration::ZERO, Duration::ZERO);
    for (code, body, took) in reads {
        slowest = slowest.max(took);
        if code == 503 {
            slowest_busy = slowest_busy.max(took);
        }
        let what = body["code"].as_str().unwrap_or_default().to_owned();
        match (code, what.as_str()) {
            (503, "busy") => {}
            (422, "guest_error") => {
                let message = body["error"].as_str().unwrap_or_default();
                assert!(message.contains("CPU time limit of 500 ms"), "{body}");
                assert!(message.contains("hostile-sleep"), "{body}");
            }
            _ => panic!("unexpected answer {code}: {body}"),
        }
        *counts.entry((code, what)).or_default() += 1;
    }
    eprintln!(
        "600 aggregates answered in {:?} (slowest {slowest:?}): {counts:?}",
        started.elapsed()
    );
    assert!(
        counts.get(&(422, "guest_error".into())) >= Some(&1),
        "{counts:?}"
    );
    assert!(
        counts.get(&(503, "busy".into())) >= Some(&100),
        "{counts:?}"
    );
    assert!(
        slowest < Duration::from_secs(10),
        "no read hangs: the slowest took {slowest:?}"
    );
    // Past the team's cap a read is refused at once, never queued (the shared
    // permits' wait is 3 s).
    assert!(
        slowest_busy < Duration::from_millis(2500),
        "a refused read took {slowest_busy:?}"
    );

    // Another team's aggregate is not refused for evil's.
    let (code, body) = d
        .request_as(
            GOOD,
            Method::GET,
            "/streams/no-such-stream/aggregate/incident-details",
            None,
        )
        .await;
    assert_eq!(code, 200, "{body}");

    let report = by.finish(&d).await;
    report.assert_p99_below(Duration::from_millis(100));
    d.assert_peak_rss_below(RSS_BOUND);

    // And SIGTERM ends the daemon while a new wave of them runs.
    let url = format!("{}/streams/insomnia-1/aggregate/hostile-sleep", d.url);
    let wave: Vec<_> = (0..50)
        .map(|_| {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move {
                let _ = http.get(url).bearer_auth("evil-token").send().await;
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    d.sigterm_within(Duration::from_secs(10));
    for w in wave {
        w.abort();
    }
}
