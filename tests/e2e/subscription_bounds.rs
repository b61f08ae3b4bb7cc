//! Where a subscription's reads and retries stop, against a real daemon: a stream
//! read cut short by bytes is never handed over as the whole stream (1.0.0) nor
//! followed by the page's own emits (1.1.0); a read with bad arguments is the
//! guest's error; a page whose every prefix fails ends, dead-lettered, instead of
//! spinning; subscription pages keep to `page_bytes`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::Daemon;
use crate::subscription_guarantees::{config, count, paused, poke, settled};

/// Appends `n` events of type `ty`, each with `pad` bytes of data, to `stream`, in
/// appends of at most 100; returns their sequences.
async fn append_padded(daemon: &Daemon, stream: &str, ty: &str, n: usize, pad: usize) -> Vec<i64> {
    let mut sequences = Vec::new();
    let mut done = 0;
    while done < n {
        let chunk = (n - done).min(100);
        let events: Vec<(String, Value)> = (0..chunk)
            .map(|_| (ty.to_owned(), json!({ "pad": "x".repeat(pad) })))
            .collect();
        let (code, body) = daemon.append(stream, None, &events).await;
        assert_eq!(code, 200, "{body}");
        let first = body["first_sequence"].as_i64().unwrap_or_default();
        sequences.extend((0..chunk as i64).map(|i| first + i));
        done += chunk;
    }
    sequences
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_read_cut_short_by_bytes_is_never_taken_for_the_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 300 events of 64 KiB: more than one stream page holds (16 MiB).
    let cfg = format!(
        "[limits]\ncall_timeout_ms = 60000\n{}",
        config("emit-count", "")
    );
    let daemon = Daemon::start(&dir.path().join("data"), Some(&cfg));
    append_padded(&daemon, "long", "Item", 300, 64 << 10).await;
    daemon.deploy(refract_test_artifacts::EMIT_PROBE).await;
    poke(&daemon, "a", 1).await;
    settled(&daemon, 1).await;
    // 1.1.0: the page's two emits come after the whole stored stream, not after a
    // first page cut short (which would end the fold early).
    let (code, body) = daemon.get("/streams/counts").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["events"][0]["data"]["events"], 302, "{body}");

    // 1.0.0 reads whole streams: one cut short is the guest's error, not a part.
    daemon.deploy(refract_test_artifacts::EMIT_PROBE_V100).await;
    let p2 = paused(&daemon, 2, Duration::from_secs(120)).await;
    let message = p2["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("read-stream: stream long is more than 16 MiB"),
        "{p2}"
    );
    assert_eq!(p2["error"]["fault"], "guest", "{p2}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_reads_with_bad_arguments_are_the_guests_errors() {
    for (settings, says) in [
        (
            "from = \"18446744073709551615\"\n",
            "from_version 18446744073709551615 is past the largest stream version",
        ),
        ("limit = \"0\"\n", "limit must be at least 1"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let daemon = Daemon::start(
            &dir.path().join("data"),
            Some(&config("read-page", settings)),
        );
        daemon.deploy(refract_test_artifacts::EMIT_PROBE).await;
        poke(&daemon, "a", 1).await;
        let p = paused(&daemon, 1, Duration::from_secs(30)).await;
        let message = p["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{says}: {p}");
        assert_eq!(p["error"]["fault"], "guest", "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_failing_at_its_last_event_ends_dead_lettered_not_spinning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = "[components.emit-probe]\nattempts = 2\non_error = \"dead-letter\"\n\
               [components.emit-probe.settings]\nmode = \"fail-last-of-many\"\n";
    let daemon = Daemon::start(&dir.path().join("data"), Some(cfg));
    // One page of five: each page of more than one event fails naming its last.
    let mut seqs = Vec::new();
    for i in 0..5 {
        seqs.extend(append_padded(&daemon, &format!("poke-{i}"), "Poke", 1, 1).await);
    }
    daemon.deploy(refract_test_artifacts::EMIT_PROBE).await;
    let started = Instant::now();
    let p = loop {
        let p = daemon.projection("emit-probe", 1).await;
        if p["position"] == seqs[4] {
            break p;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "stuck: {p}\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(p["status"], "running", "{p}");
    let (code, body) = daemon
        .get("/projections/emit-probe/versions/1/dead-letters")
        .await;
    assert_eq!(code, 200, "{body}");
    let letters: Vec<Value> = body["dead_letters"]
        .as_array()
        .map(|l| l.iter().map(|d| d["sequence"].clone()).collect())
        .unwrap_or_default();
    // [1..5] narrows to 1 handled, 2 dead; [3..5] to 3 handled, 4 dead; [5] passes.
    assert_eq!(letters, vec![json!(seqs[1]), json!(seqs[3])], "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_pages_keep_to_page_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = format!("page_bytes = 1000\n{}", config("echo", ""));
    let daemon = Daemon::start(&dir.path().join("data"), Some(&cfg));
    for i in 0..6 {
        append_padded(&daemon, &format!("poke-{i}"), "Poke", 1, 600).await;
    }
    daemon.deploy(refract_test_artifacts::EMIT_PROBE).await;
    let p = settled(&daemon, 1).await;
    assert_eq!(count(&daemon, "echo").await, 6);
    assert_eq!(
        p["metrics"]["pages"], 6,
        "one event of 600 bytes a page: {p}"
    );
}
