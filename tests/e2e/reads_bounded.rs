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
        slowest < Duration::from_secs(5),
        "plain reads waited {slowest:?} behind the consistent reads"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_counted_in_the_status_and_listed_a_page_at_a_time() {
    let config = "[components.word-counter]\non_error = \"dead-letter\"\nattempts = 1\n";
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), Some(config));
    daemon.deploy(WORD_COUNTER).await;
    let events: Vec<(String, Value)> = (0..50)
        .map(|i| {
            let text = if i % 2 == 0 { "poison" } else { "apple" };
            ("TextWritten".to_owned(), json!({ "text": text }))
        })
        .collect();
    let (code, out) = daemon.append("s", None, &events).await;
    assert_eq!(code, 200, "{out}");
    let poisoned: Vec<i64> = (0..25).map(|i| 1 + 2 * i).collect();
    let p = daemon
        .wait_caught_up("word-counter", 1, 50, Duration::from_secs(60))
        .await;
    assert_eq!(p["dead_letter_count"], 25, "{p}");
    let shown: Vec<i64> = p["dead_letters"]
        .as_array()
        .expect("dead letters")
        .iter()
        .filter_map(|l| l["sequence"].as_i64())
        .collect();
    assert_eq!(shown, poisoned[..20], "the first 20, oldest first");

    let path = "/projections/word-counter/versions/1/dead-letters";
    let (code, all) = daemon.get(path).await;
    assert_eq!(code, 200, "{all}");
    assert_eq!(all["dead_letters"].as_array().map(Vec::len), Some(25));
    assert_eq!(
        (&all["dead_letter_count"], &all["next"]),
        (&json!(25), &Value::Null)
    );
    let (mut seen, mut after, mut pages) = (Vec::new(), Some(0), 0);
    while let Some(a) = after {
        let (code, page) = daemon.get(&format!("{path}?after={a}&limit=10")).await;
        assert_eq!(code, 200, "{page}");
        let letters = page["dead_letters"].as_array().expect("letters");
        assert!(letters.len() <= 10, "{page}");
        seen.extend(letters.iter().filter_map(|l| l["sequence"].as_i64()));
        after = page["next"].as_i64();
        pages += 1;
    }
    assert_eq!((seen, pages), (poisoned.clone(), 3));
    let (_, past) = daemon.get(&format!("{path}?after={}", poisoned[24])).await;
    assert_eq!(
        (&past["dead_letters"], &past["next"]),
        (&json!([]), &Value::Null)
    );
    let (_, capped) = daemon.get(&format!("{path}?limit=100000")).await;
    assert_eq!(capped["dead_letters"].as_array().map(Vec::len), Some(25));
    for bad in ["?limit=0", "?after=x", "?colour=red"] {
        let (code, got) = daemon.get(&format!("{path}{bad}")).await;
        assert_eq!(
            (code, &got["code"]),
            (400, &json!("invalid")),
            "{bad}: {got}"
        );
    }
}
