//! Guest results and text that would cost the host, not the guest (issue 11, point
//! 5): a slice index bomb, repeated indices, a fan-out of 200,000 documents per
//! event, 100,000 event types, a log flood, a forged log line and a 10 MiB returned
//! error, and a page touching more stored documents than it may return. Each is
//! refused or paused with an error naming what it did, while the daemon's log and
//! memory stay small and a well-behaved team keeps up beside it (the bystander: p99
//! append-to-visible under 100 ms, documents equal to the native fold), and SIGTERM
//! ends the daemon within 10 s.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::Daemon;
use crate::common::bystander::Bystander;

/// The daemon's peak resident memory during any of these attacks. Unchecked, the
/// index bomb alone made the host allocate gigabytes.
const RSS_BOUND: u64 = 512 << 20;

/// One attempt per failing event, so a hostile page pauses quickly.
const CONFIG: &str = "[components.hostile-bounds]\nattempts = 1\n";

/// What a `hostile-bounds` daemon log must never hold at the start of a line.
const FORGED: &str = "ERROR refract::daemon::agent: paused: FORGED-BY-GUEST";

/// One attack at a time: the bystander's latency bound is about the attack beside
/// it, not about the other tests of this file sharing the machine's cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn start(dir: &tempfile::TempDir, config: &str) -> Daemon {
    let daemon = Daemon::start(&dir.path().join("data"), Some(config));
    daemon.deploy(refract_test_artifacts::HOSTILE_BOUNDS).await;
    daemon
}

/// Starts the bystander and waits until its appends show, so the attack that follows
/// runs while it works.
async fn bystander(daemon: &Daemon) -> Bystander {
    let by = Bystander::start(daemon, None).await;
    let started = Instant::now();
    while daemon.projection("incident-details", 1).await["position"].as_i64() < Some(1) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the bystander never appended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    by
}

/// Ends a test: the bystander kept up and saw its documents, the daemon's memory
/// stayed bounded, and SIGTERM ends it in time.
async fn bystander_kept_up(by: Bystander, mut daemon: Daemon) {
    // The bystander goes on a while after the attack, beside its paused component.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report = by.finish(&daemon).await;
    report.assert_p99_below(Duration::from_millis(100));
    daemon.assert_peak_rss_below(RSS_BOUND);
    daemon.sigterm_within(Duration::from_secs(10));
}

/// Appends one event of type `ty` as the first of stream `stream`; returns its
/// sequence.
async fn append(daemon: &Daemon, stream: &str, ty: &str) -> i64 {
    let (status, body) = daemon
        .append(stream, Some(0), &[(ty.to_owned(), json!({}))])
        .await;
    assert_eq!(status, 200, "{body}");
    body["first_sequence"].as_i64().expect("sequence")
}

/// Waits until hostile-bounds is paused and returns its status row.
async fn paused(daemon: &Daemon) -> Value {
    let started = Instant::now();
    loop {
        let p = daemon.projection("hostile-bounds", 1).await;
        if p["status"] == "paused" {
            return p;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not paused: {p}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Its pause error's message, checked to name the component, to be the guest's
/// fault and to contain `needles`.
fn pause_message(p: &Value, needles: &[&str]) -> String {
    assert_eq!(p["error"]["fault"], "guest", "{p}");
    assert_eq!(p["error"]["component"], "hostile-bounds@v1", "{p}");
    let message = p["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for needle in needles {
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
    message
}

/// The document of stream `id` written by hostile-bounds (its event count).
async fn count(daemon: &Daemon, id: &str) -> Value {
    let (_, doc) = daemon
        .get(&format!("/projections/hostile-bounds/docs/{id}"))
        .await;
    doc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slice_index_bomb_is_refused_before_the_host_allocates_it() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = start(&dir, CONFIG).await;
    let by = bystander(&daemon).await;
    append(&daemon, "fine-1", "Fine").await;
    // 12 million copies of index 0: 48 MB in the guest; the host would have made
    // a copy of the page's event per index (gigabytes).
    let bomb = append(&daemon, "bomb-1", "SliceBomb").await;
    let p = paused(&daemon).await;
    let message = pause_message(&p, &["slice handed the host more than", "bytes at once"]);
    eprintln!("slice bomb: {message}");
    // The event before the bomb was projected; the bomb was its own page.
    assert_eq!(count(&daemon, "fine-1").await, json!({"n": 1}));
    let alone = format!("events {bomb}..={bomb}");
    assert!(message.contains(&alone), "{message}");
    bystander_kept_up(by, daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeated_slice_indices_are_a_guest_error() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = start(&dir, CONFIG).await;
    let by = bystander(&daemon).await;
    append(&daemon, "fine-1", "Fine").await;
    append(&daemon, "repeat-1", "Repeat").await;
    let p = paused(&daemon).await;
    pause_message(
        &p,
        &[
            "returned an invalid result",
            "document \"repeat\"",
            "event index 0 follows 0: indices must be strictly increasing",
        ],
    );
    assert_eq!(count(&daemon, "fine-1").await, json!({"n": 1}));
    bystander_kept_up(by, daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fan_out_of_200000_documents_per_event_is_refused() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Pages of 100 events: at most 1,000 documents per page by default.
    let config = format!("page_size = 100\n{CONFIG}");
    let daemon = start(&dir, &config).await;
    let by = bystander(&daemon).await;
    let fine = append(&daemon, "fine-1", "Fine").await;
    let mut fans = Vec::new();
    for i in 0..3 {
        fans.push(append(&daemon, &format!("fan-{i}"), "FanOut").await);
    }
    let p = paused(&daemon).await;
    let message = pause_message(
        &p,
        &[
            "slice named 200000 documents for a page of 1 events; the limit is 1000 per page \
             (max_docs_per_page)",
        ],
    );
    eprintln!("fan-out: {message}");
    assert_eq!(count(&daemon, "fine-1").await, json!({"n": 1}));
    // Not one of its documents was written.
    let (status, body) = daemon
        .get(&format!("/projections/hostile-bounds/docs/e{}-d0", fans[0]))
        .await;
    assert_eq!(status, 404, "{body}");
    let position = p["position"].as_i64().expect("position");
    assert!(fine <= position && position < fans[0], "{p}");
    bystander_kept_up(by, daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stored_documents_past_a_pages_result_bytes_are_refused_before_they_are_loaded() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // 40 documents of 200 KB (8 MB), written 8 a page (1.6 MB, under the 2 MiB a page
    // may return); a cache of 1 MiB keeps few of them, so a page touching them all
    // must load them from the store.
    let config = format!(
        "page_size = 8\ncache_bytes = 1048576\n[limits]\nmax_result_bytes = 2097152\n{CONFIG}"
    );
    let daemon = start(&dir, &config).await;
    let by = bystander(&daemon).await;
    for k in 0..40 {
        append(&daemon, &format!("grow-{k}"), "Grow").await;
    }
    let fine = append(&daemon, "fine-1", "Fine").await;
    let started = Instant::now();
    while count(&daemon, "fine-1").await != json!({"n": 1}) {
        assert!(started.elapsed() < Duration::from_secs(60), "not projected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let gather = append(&daemon, "gather-1", "Gather").await;
    let p = paused(&daemon).await;
    let message = pause_message(
        &p,
        &[
            "the documents the page's events touch are more than 2097152 bytes together \
             (max_result_bytes)",
        ],
    );
    eprintln!("gather: {message}");
    assert_eq!(p["error"]["event_sequence"], gather, "{p}");
    let position = p["position"].as_i64().expect("position");
    assert!(fine <= position && position < gather, "{p}");
    bystander_kept_up(by, daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_documents_per_page_follow_the_configured_limit() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // A limit above the fan-out: its 200,000 documents are written.
    let config = format!("page_size = 10\n[limits]\nmax_docs_per_page = 200000\n{CONFIG}");
    let daemon = start(&dir, &config).await;
    let fan = append(&daemon, "fan-0", "FanOut").await;
    append(&daemon, "fine-1", "Fine").await;
    let started = Instant::now();
    while count(&daemon, "fine-1").await != json!({"n": 1}) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not projected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        count(&daemon, &format!("e{fan}-d199999")).await,
        json!({"n": 1})
    );
    assert_eq!(
        daemon.projection("hostile-bounds", 1).await["status"],
        "running"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn describe_with_100000_event_types_is_refused_at_deploy() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), None);
    let wasm = std::fs::read(refract_test_artifacts::HOSTILE_TYPES).expect("read component");
    let upload = || daemon.request(reqwest::Method::POST, "/components", Some(wasm.clone()));
    // One refused upload before the bystander starts, three while it works (each
    // compiles the component again, in the compile lane: a refused upload leaves
    // no code behind).
    let (status, body) = upload().await;
    assert_eq!(status, 400, "{body}");
    let by = bystander(&daemon).await;
    for _ in 0..3 {
        let t = Instant::now();
        let (status, body) = upload().await;
        eprintln!("refused upload took {:?}", t.elapsed());
        assert_eq!(status, 400, "{body}");
        let text = body.to_string();
        assert!(
            text.contains("declares 100000 event types; the limit is 1000"),
            "{text}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (_, list) = daemon.get("/projections").await;
    assert!(
        !list.to_string().contains("hostile-types"),
        "not deployed: {list}"
    );
    bystander_kept_up(by, daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_log_flood_is_capped_and_a_forged_log_line_is_escaped() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = start(&dir, CONFIG).await;
    let by = bystander(&daemon).await;
    append(&daemon, "forge-1", "Forge").await;
    append(&daemon, "flood-1", "LogFlood").await;
    append(&daemon, "fine-1", "Fine").await;
    let started = Instant::now();
    while count(&daemon, "fine-1").await != json!({"n": 1}) {
        assert!(started.elapsed() < Duration::from_secs(60), "not projected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Logging is no fault: the component runs on.
    let p = daemon.projection("hostile-bounds", 1).await;
    assert_eq!(p["status"], "running", "{p}");
    assert_eq!(count(&daemon, "flood-1").await, json!({"n": 1}));
    let log = daemon.log();
    for line in log.lines() {
        assert!(
            !line.starts_with(FORGED),
            "forged line in the log: {line:?}"
        );
        assert!(!line.contains('\u{1b}') && !line.contains('\r'), "{line:?}");
    }
    let escaped = format!("innocent\\n{FORGED}\\r\\u{{1b}}[2Kalso\\u{{1b}}]0;title\\u{{7}}");
    assert!(
        log.contains(&escaped),
        "the guest's line, escaped, is logged"
    );
    assert!(
        log.contains("0 flood flood"),
        "the flood's first lines are logged"
    );
    assert!(!log.contains("99999 flood"), "its last are not");
    assert_eq!(
        log.matches("guest log lines beyond 16384 bytes are dropped")
            .count(),
        1,
        "the cap is noted once"
    );
    // 100,000 lines of 210 bytes were sent: about 21 MB.
    assert!(
        log.len() < 512 << 10,
        "the log stays small: {} bytes",
        log.len()
    );
    bystander_kept_up(by, daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_10_mib_returned_error_is_cut_before_it_is_stored_served_or_logged() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Two attempts: the error is logged on the retry as well.
    let config = "[components.hostile-bounds]\nattempts = 2\n";
    let daemon = start(&dir, config).await;
    let by = bystander(&daemon).await;
    append(&daemon, "fine-1", "Fine").await;
    let big = append(&daemon, "big-1", "BigError").await;
    let p = paused(&daemon).await;
    let message = pause_message(&p, &["big error\\nERROR refract::daemon::agent: 0123"]);
    assert!(message.len() <= 4096, "{} bytes stored", message.len());
    assert!(
        message.ends_with("more bytes cut]"),
        "the cut is marked: {}",
        &message[message.len().saturating_sub(80)..]
    );
    assert!(
        !message.contains('\n') && !message.contains('\u{1b}'),
        "{message}"
    );
    assert_eq!(p["error"]["event_sequence"], big, "{p}");
    // Served whole, the listing stays small.
    let (_, list) = daemon.get("/projections").await;
    assert!(
        list.to_string().len() < 16 << 10,
        "{} bytes served",
        list.to_string().len()
    );
    let log = daemon.log();
    assert!(log.contains("retrying with a fresh instance"), "retried");
    assert!(log.contains("paused"), "paused");
    for line in log.lines() {
        assert!(
            !line.starts_with("ERROR refract::daemon::agent:"),
            "forged line in the log: {line:?}"
        );
        assert!(line.len() < 8 << 10, "a log line of {} bytes", line.len());
    }
    assert!(
        log.len() < 256 << 10,
        "the log stays small: {} bytes",
        log.len()
    );
    assert_eq!(count(&daemon, "fine-1").await, json!({"n": 1}));
    bystander_kept_up(by, daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_lettered_10_mib_error_is_stored_cut() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = "[components.hostile-bounds]\nattempts = 1\non_error = \"dead-letter\"\n";
    let daemon = start(&dir, config).await;
    let by = bystander(&daemon).await;
    append(&daemon, "big-1", "BigError").await;
    append(&daemon, "fine-1", "Fine").await;
    let started = Instant::now();
    while count(&daemon, "fine-1").await != json!({"n": 1}) {
        assert!(started.elapsed() < Duration::from_secs(60), "not projected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = daemon
        .get("/projections/hostile-bounds/versions/1/dead-letters")
        .await;
    assert_eq!(status, 200, "{body}");
    let letters = body["dead_letters"].as_array().expect("letters");
    assert_eq!(letters.len(), 1, "{body}");
    let error = letters[0]["error"].as_str().expect("error text");
    assert!(
        error.contains("big error\\nERROR refract::daemon::agent: 0123"),
        "{error}"
    );
    assert!(error.ends_with("more bytes cut]"), "{error}");
    // The component and the event are named before the guest's 4 KiB.
    assert!(error.len() <= 4096 + 64, "{} bytes stored", error.len());
    assert!(daemon.log().len() < 256 << 10, "the log stays small");
    bystander_kept_up(by, daemon).await;
}
