//! Poison and oversized events through the real daemon: one event whose data does
//! not decode is dead-lettered while 10,000 good ones around it are projected; a
//! fixed build put in place (deploy --replace) replays it; an event over the
//! maximum size is refused with 413 and nothing is written.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::Daemon;

const CONFIG: &str = r#"
max_event_bytes = 65536
[components.value-sum]
on_error = "dead-letter"
attempts = 2
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_is_dead_lettered_then_replayed_after_a_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), Some(CONFIG));
    daemon.deploy(refract_test_artifacts::VALUE_SUM).await;
    // 100 streams of 100 events; stream s-42 gets "three" as its 51st value.
    let mut poison_seq = None;
    let mut sums = vec![0i64; 100];
    for half in 0..2 {
        for (s, sum) in sums.iter_mut().enumerate() {
            let events: Vec<(String, Value)> = (0..50)
                .map(|i| {
                    let n = (s * 7 + i) as i64 % 13;
                    let value = if s == 42 && half == 1 && i == 0 {
                        json!("three")
                    } else {
                        *sum += n;
                        json!(n)
                    };
                    ("ValueAdded".to_owned(), json!({ "value": value }))
                })
                .collect();
            let (code, body) = daemon
                .append(&format!("s-{s}"), Some(half * 50), &events)
                .await;
            assert_eq!(code, 200, "{body}");
            if s == 42 && half == 1 {
                poison_seq = body["first_sequence"].as_i64();
            }
        }
    }
    let poison_seq = poison_seq.expect("poison appended");
    let p = daemon
        .wait_caught_up("value-sum", 1, 10_001 - 1, Duration::from_secs(60))
        .await;
    assert_eq!(p["status"], "running", "{p}");
    assert_eq!(p["events_applied"], 9_999, "{p}");
    let (code, letters) = daemon
        .get("/projections/value-sum/versions/1/dead-letters")
        .await;
    assert_eq!(code, 200, "{letters}");
    let letters = letters["dead_letters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["sequence"], poison_seq);
    let error = letters[0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("ValueAdded") && error.contains(&poison_seq.to_string()),
        "{error}"
    );
    for (s, sum) in sums.iter().enumerate() {
        let (_, doc) = daemon
            .get(&format!("/projections/value-sum/docs/s-{s}"))
            .await;
        assert_eq!(doc["sum"], *sum, "s-{s}: {doc}");
    }
    // Replaying with the same code fails again and keeps the letter.
    let (code, body) = daemon
        .request(
            reqwest::Method::POST,
            "/projections/value-sum/versions/1/dead-letters/replay",
            None,
        )
        .await;
    assert_eq!(code, 422, "{body}");
    // The fix goes in place, keeping the documents; the replay applies the event.
    let fixed = std::fs::read(refract_test_artifacts::VALUE_SUM_FIXED).expect("built");
    let (code, body) = daemon
        .request(
            reqwest::Method::POST,
            "/components?replace=true",
            Some(fixed),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = daemon
        .request(
            reqwest::Method::POST,
            "/projections/value-sum/versions/1/dead-letters/replay",
            None,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["replayed"], 1, "{body}");
    let (_, doc) = daemon.get("/projections/value-sum/docs/s-42").await;
    assert_eq!(doc["sum"], sums[42] + 3, "{doc}");
    assert_eq!(doc["count"], 100, "{doc}");
    let p = daemon.projection("value-sum", 1).await;
    assert_eq!(p["dead_letters"], json!([]), "{p}");
    let (_, doc) = daemon.get("/projections/value-sum/docs/s-41").await;
    assert_eq!(doc["sum"], sums[41], "the other documents were kept: {doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_over_the_maximum_size_is_refused_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), Some(CONFIG));
    let big = "x".repeat(70_000);
    let events = [
        ("ValueAdded".to_owned(), json!({"value": 1})),
        ("ValueAdded".to_owned(), json!({"value": 2, "note": big})),
    ];
    let (code, body) = daemon.append("big", Some(0), &events).await;
    assert_eq!(code, 413, "{body}");
    assert_eq!(body["index"], 1, "{body}");
    assert_eq!(body["max_event_bytes"], 65536, "{body}");
    let msg = body["error"].as_str().unwrap_or_default();
    assert!(msg.contains("events[1]") && msg.contains("65536"), "{msg}");
    let (code, stream) = daemon.get("/streams/big").await;
    assert!(
        code == 404 || stream["version"] == 0,
        "nothing was written: {code} {stream}"
    );
    let (code, body) = daemon.append("big", Some(0), &events[..1]).await;
    assert_eq!(code, 200, "{body}");
}
