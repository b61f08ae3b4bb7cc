//! Hostile guests beside a well-behaved one: each is stopped, retried with a fresh
//! instance after a wait, then paused with an error naming the limit it hit, while
//! the daemon stays up and incident-details keeps up with the appends.

use std::time::{Duration, Instant};

use crate::common::Daemon;
use crate::common::bystander::Bystander;

/// The daemon's peak resident memory while the hostile guests run: the pool reserves
/// virtual memory only, a 128 MiB guest touches what it allocates before it traps.
const RSS_BOUND: u64 = 768 << 20;

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
    // A well-behaved team appends steadily while the hostile guests are deployed
    // and fail.
    let by = Bystander::start(&daemon, None).await;
    for (wasm, _, _) in hostile() {
        daemon.deploy(wasm).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

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
    let report = by.finish(&daemon).await;
    report.assert_p99_below(Duration::from_millis(100));
    daemon.assert_peak_rss_below(RSS_BOUND);
    daemon.sigterm_within(Duration::from_secs(10));
}
