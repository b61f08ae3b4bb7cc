//! Request-driven reads stay bounded under load: concurrent consistent reads leave
//! the store's readers to everyone else and answer `busy` past their permits, and
//! dead letters are counted in the status and listed a page at a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use refract_test_artifacts::WORD_COUNTER;
use serde_json::{Value, json};

use crate::common::Daemon;

/// Appends `n` events of `text` to `stream`, 10,000 a request.
async fn bulk(daemon: &Daemon, stream: &str, text: &str, n: usize) {
    for start in (0..n).step_by(10_000) {
        let events: Vec<(String, Value)> = (start..n.min(start + 10_000))
            .map(|_| ("TextWritten".to_owned(), json!({ "text": text })))
            .collect();
        let (code, out) = daemon.append(stream, None, &events).await;
        assert_eq!(code, 200, "{out}");
    }
}

/// Waits until word-counter version 1 is paused (or 30 s pass).
async fn paused(daemon: &Daemon) {
    let started = Instant::now();
    while daemon.projection("word-counter", 1).await["status"] != "paused" {
        assert!(started.elapsed() < Duration::from_secs(30), "never paused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_consistent_reads_leave_the_readers_free_and_answer_busy_past_the_permits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Arc::new(Daemon::start(&dir.path().join("data"), None));
    daemon.deploy(WORD_COUNTER).await;
    // Paused before 90,000 events: every consistent read folds them all in the guest.
    bulk(&daemon, "first", "poison", 1).await;
    paused(&daemon).await;
    let text = "apple river stone cloud ember frost grove haven";
    bulk(&daemon, "notes", text, 90_000).await;

    let started = Instant::now();
    let mut reads = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let daemon = daemon.clone();
        reads.spawn(async move {
            let at = Instant::now();
            let (code, got) = daemon
                .get("/projections/word-counter/docs/apple?consistent=true")
                .await;
            (code, got, at.elapsed())
        });
    }
    // Meanwhile plain reads, which need a reader connection, answer promptly.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let at = Instant::now();
        let (code, got) = daemon.get("/streams/notes?limit=1").await;
        assert_eq!(code, 200, "{got}");
        let (code, got) = daemon.get("/projections/word-counter/docs/nothing").await;
        assert_eq!(code, 404, "{got}");
        slowest = slowest.max(at.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (mut ok, mut busy) = (0, 0);
    while let Some(done) = reads.join_next().await {
        let (code, got, took) = done.expect("read task");
        eprintln!("consistent read: {code} in {took:?}");
        match code {
            200 => {
                assert_eq!(got["count"], 90_000, "{got}");
                ok += 1;
            }
            _ => {
                assert_eq!((code, &got["code"]), (503, &json!("busy")), "{got}");
                busy += 1;
            }
        }
    }
    eprintln!(
        "{ok} consistent reads, {busy} busy in {:?}; slowest plain read {slowest:?}",
        started.elapsed()
    );
    assert!(ok >= 4, "{ok} of 12 consistent reads answered");
    assert!(
        slowest < Duration::from_secs(2),
        "plain reads waited {slowest:?} behind the consistent reads"
    );
}
