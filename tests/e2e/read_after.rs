//! Read-your-writes (issue 14): `?after=<sequence>` waits, bounded, until the version
//! has projected the client's append; 504 naming the position reached when the time
//! runs out, 409 at once when the version is paused, 503 past a team's waits.

use std::time::Duration;

use refract_test_artifacts::STREAM_COUNTER;
use serde_json::{Value, json};

use crate::common::Daemon;

/// Appends `n` events to `streams` streams in batches; returns the last sequence.
async fn backlog(daemon: &Daemon, n: usize, streams: usize) -> i64 {
    let per_batch = 5_000;
    let mut last = 0;
    for b in 0..n.div_ceil(per_batch) {
        let events: Vec<Value> = (0..per_batch.min(n - b * per_batch))
            .map(|_| json!({"type": "IncidentLogged", "data": {}}))
            .collect();
        let (code, out) = daemon
            .post_json(
                &format!("/streams/backlog-{}/events", b % streams),
                &json!({ "events": events }),
            )
            .await;
        assert_eq!(code, 200, "{out}");
        last = out["last_sequence"].as_i64().expect("last_sequence");
    }
    last
}

/// Appends one event of `event_type` to `stream`; returns its sequence.
async fn one(daemon: &Daemon, stream: &str, event_type: &str) -> i64 {
    let (code, out) = daemon
        .append(stream, None, &[(event_type.to_owned(), json!({}))])
        .await;
    assert_eq!(code, 200, "{out}");
    out["last_sequence"].as_i64().expect("last_sequence")
}

fn doc_after(id: &str, after: i64, timeout_ms: u64) -> String {
    format!("/projections/stream-counter/docs/{id}?after={after}&timeout_ms={timeout_ms}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_after_an_append_sees_it_behind_a_backlog_of_100k_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), None);
    backlog(&daemon, 100_000, 20).await;
    let probe = one(&daemon, "probe", "IncidentLogged").await;
    // Deployed after the backlog: the new version starts from the first event.
    daemon.deploy(STREAM_COUNTER).await;
    let (code, out) = daemon.get(&doc_after("probe", probe, 1)).await;
    assert_eq!(code, 504, "{out}");
    assert_eq!(out["code"], "timeout", "{out}");
    let reached = out["position"].as_i64().expect("the position reached");
    assert!(reached < probe, "{out}");
    let text = out["error"].as_str().unwrap_or_default();
    assert!(text.contains(&format!("not yet {probe}")), "{out}");
    // A hang detector only: the read answers as soon as the version passes it.
    let (code, doc) = daemon.get(&doc_after("probe", probe, 60_000)).await;
    assert_eq!(code, 200, "{doc}");
    assert_eq!(
        (doc["total"].as_u64(), doc["last_sequence"].as_i64()),
        (Some(1), Some(probe))
    );
    // Caught up now: the next append is read back with the default wait.
    let again = one(&daemon, "probe", "IncidentClosed").await;
    let (code, doc) = daemon
        .get(&format!(
            "/projections/stream-counter/docs/probe?after={again}"
        ))
        .await;
    assert_eq!(code, 200, "{doc}");
    assert_eq!(doc["total"], 2, "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_other_types_and_a_paused_version_answer_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), None);
    daemon.deploy(STREAM_COUNTER).await;
    let first = one(&daemon, "s-1", "IncidentLogged").await;
    let (code, doc) = daemon.get(&doc_after("s-1", first, 30_000)).await;
    assert_eq!((code, &doc["total"]), (200, &json!(1)), "{doc}");
    // A type it does not handle: its idle agent is not woken for it, yet nothing is
    // left to project up to there.
    let noise = one(&daemon, "elsewhere", "Noise").await;
    let started = std::time::Instant::now();
    let (code, doc) = daemon.get(&doc_after("s-1", noise, 30_000)).await;
    assert_eq!((code, &doc["total"]), (200, &json!(1)), "{doc}");
    eprintln!("after an event of another type: {:?}", started.elapsed());
    // Paused: it will not get there, and says so at once.
    let (code, out) = daemon
        .post_json("/projections/stream-counter/versions/1/pause", &json!({}))
        .await;
    assert_eq!(code, 200, "{out}");
    let later = one(&daemon, "s-1", "IncidentClosed").await;
    let (code, out) = daemon.get(&doc_after("s-1", later, 60_000)).await;
    assert_eq!(code, 409, "{out}");
    assert_eq!(out["code"], "paused", "{out}");
    assert!(out["position"].as_i64() < Some(later), "{out}");
    // The aggregate route waits for the store's head only.
    let (code, out) = daemon
        .get(&format!(
            "/streams/s-1/aggregate/stream-counter?after={later}"
        ))
        .await;
    assert_eq!(code, 200, "{out}");
    let (code, out) = daemon
        .get(&format!(
            "/streams/s-1/aggregate/stream-counter?after={}&timeout_ms=50",
            later + 1_000
        ))
        .await;
    assert_eq!((code, &out["code"]), (504, &json!("timeout")), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_waits_are_refused_naming_the_parameter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), None);
    daemon.deploy(STREAM_COUNTER).await;
    let seq = one(&daemon, "s", "IncidentLogged").await;
    for (query, names) in [
        (format!("after={seq}&timeout_ms=60001"), "timeout_ms"),
        (format!("after={seq}&consistent=true"), "consistent"),
        ("after=-1".to_owned(), "after"),
        ("timeout_ms=10".to_owned(), "after"),
    ] {
        let (code, out) = daemon
            .get(&format!("/projections/stream-counter/docs/s?{query}"))
            .await;
        assert_eq!(code, 400, "{query}: {out}");
        let text = out["error"].as_str().unwrap_or_default();
        assert!(text.contains(names), "{query}: {out}");
    }
}

/// Deploys stream-counter as `token`'s team and appends one event to `stream`;
/// returns its sequence.
async fn team_counter(daemon: &Daemon, token: &str, stream: &str) -> i64 {
    let wasm = std::fs::read(STREAM_COUNTER).expect("built");
    let (code, out) = daemon
        .request_as(
            Some(token),
            reqwest::Method::POST,
            "/components",
            Some(wasm),
        )
        .await;
    assert_eq!(code, 200, "{out}");
    let body = json!({"events": [{"type": "IncidentLogged", "data": {}}]});
    let (code, out) = daemon
        .request_as(
            Some(token),
            reqwest::Method::POST,
            &format!("/streams/{stream}/events"),
            Some(body.to_string().into_bytes()),
        )
        .await;
    assert_eq!(code, 200, "{out}");
    out["last_sequence"].as_i64().expect("last_sequence")
}

/// Waiting reads team `a` may have (its `max_waiting_reads`).
const A_WAITS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_waits_at_most_its_share_and_another_team_is_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = format!(
        "[teams.a]\ntoken = \"a-token\"\nmax_waiting_reads = {A_WAITS}\n\
         [teams.b]\ntoken = \"b-token\"\n"
    );
    let daemon = Daemon::start(&dir.path().join("data"), Some(&cfg));
    let seq_a = team_counter(&daemon, "a-token", "a-s").await;
    let seq_b = team_counter(&daemon, "b-token", "b-s").await;
    // Sequences no append has reached: each read waits its whole timeout.
    let far = seq_a.max(seq_b) + 1_000_000;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    // Twice the cap at once, each waiting 10 s if admitted: the first A_WAITS in
    // wait (504 at the end), the others are refused at once (503).
    let url = format!("{}{}", daemon.url, doc_after("a-s", far, 10_000));
    let started = std::time::Instant::now();
    let waiting: Vec<_> = (0..2 * A_WAITS)
        .map(|_| {
            let req = http.get(url.clone()).bearer_auth("a-token");
            tokio::spawn(async move {
                let r = req.send().await.expect("request");
                (
                    r.status().as_u16(),
                    r.text().await.unwrap_or_default(),
                    started.elapsed(),
                )
            })
        })
        .collect();
    let as_team = |token: &'static str, path: String| {
        let daemon = &daemon;
        async move {
            daemon
                .request_as(Some(token), reqwest::Method::GET, &path, None)
                .await
        }
    };
    // Team b's waits are its own: served while team a's are all taken.
    let (code, doc) = as_team("b-token", doc_after("b-s", seq_b, 30_000)).await;
    assert_eq!((code, &doc["total"]), (200, &json!(1)), "{doc}");
    let aggregate = format!("/streams/b-s/aggregate/stream-counter?after={seq_b}");
    let (code, out) = as_team("b-token", aggregate).await;
    assert_eq!(code, 200, "{out}");
    let mut answers = Vec::new();
    for w in waiting {
        answers.push(w.await.expect("task"));
    }
    let busy: Vec<_> = answers.iter().filter(|a| a.0 == 503).collect();
    let waited = answers.iter().filter(|a| a.0 == 504).count();
    assert_eq!((waited, busy.len()), (A_WAITS, A_WAITS), "{answers:?}");
    for (_, body, at) in &busy {
        assert!(body.contains("max_waiting_reads"), "{body}");
        assert!(
            *at < Duration::from_secs(10),
            "refused at once, not after waiting: {at:?}"
        );
    }
    // Their permits are back.
    let (code, out) = as_team("a-token", doc_after("a-s", seq_a, 1_000)).await;
    assert_eq!(code, 200, "{out}");
}
