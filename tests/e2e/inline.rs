//! Inline projections (issue 14): seed 003's word counter run inline (config
//! `lifecycle = "inline"`), its documents written in each append's own
//! transaction. Four clients counting the same words read-then-append with the
//! word's count as the expected version: every count is exact, and no conflict is
//! ever answered by a stale read. A guest error rejects the append (422, naming the
//! event) and nothing of it is written; a paused version is deferred to its agent.
//! The store must project inline (SQLite): on PostgreSQL the tests check the
//! deploy refusal instead.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::common::Daemon;

const CONFIG: &str = "[components.word-count]\nlifecycle = \"inline\"\n";
const WORDS: [&str; 3] = ["dictionary", "all", "zebra"];
/// Counts each client makes.
const PER_CLIENT: usize = 30;

/// The word's count as the word counter's document says it (0 without one).
async fn count(daemon: &Daemon, word: &str) -> u64 {
    let (code, doc) = daemon
        .get(&format!("/projections/word-count/docs/word/{word}"))
        .await;
    match code {
        404 => 0,
        200 => doc["count"].as_u64().expect("count"),
        _ => panic!("reading {word}: {code} {doc}"),
    }
}

/// Appends `ValueUpdated { Key: word, Value: value }` expecting the stream at
/// `expected`.
async fn update(daemon: &Daemon, word: &str, value: u64, expected: u64) -> (u16, Value) {
    let data = json!({"Key": word, "Value": value});
    daemon
        .append(
            &format!("word-{word}"),
            Some(expected),
            &[("ValueUpdated".into(), data)],
        )
        .await
}

/// One client: `PER_CLIENT` counts, each read-then-append, retried on a conflict.
/// Returns its conflicts; panics on a conflict answered by a stale read.
async fn client(daemon: &Daemon, n: usize) -> usize {
    let mut conflicts = 0;
    for i in 0..PER_CLIENT {
        let word = WORDS[(n + i) % WORDS.len()];
        let mut seen = count(daemon, word).await;
        loop {
            let (code, out) = update(daemon, word, seen + 1, seen).await;
            if code == 200 {
                let inline = &out["inline"][0];
                assert_eq!(inline["projected"], true, "{out}");
                assert_eq!(count(daemon, word).await, seen + 1, "read your write");
                break;
            }
            assert_eq!(code, 409, "{out}");
            conflicts += 1;
            // Another client counted it: its documents landed with its events, so
            // the read after the conflict already shows its count.
            let now = count(daemon, word).await;
            assert!(
                now > seen,
                "a stale read after a conflict: {word} still {now}"
            );
            seen = now;
        }
    }
    conflicts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_clients_reading_then_appending_count_exactly_with_no_stale_read() {
    if crate::common::backend::is_postgres() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // A budget no loaded test machine reaches: this test is about counts.
    let config = format!("[limits]\ninline_budget_ms = 10000\n{CONFIG}");
    let daemon = Daemon::start(&dir.path().join("data"), Some(&config));
    daemon.deploy(refract_test_artifacts::WORD_COUNT).await;
    let p = daemon.projection("word-count", 1).await;
    assert_eq!(p["lifecycle"], "inline", "{p}");

    let conflicts: usize = join_all((0..4).map(|n| client(&daemon, n)))
        .await
        .into_iter()
        .sum();
    let mut total = 0;
    for word in WORDS {
        let (code, stream) = daemon.get(&format!("/streams/word-{word}")).await;
        assert_eq!(code, 200, "{stream}");
        let version = stream["version"].as_u64().expect("version");
        assert_eq!(count(&daemon, word).await, version, "{word}");
        total += version;
    }
    assert_eq!(total as usize, 4 * PER_CLIENT, "every count landed once");
    // The dictionary's pages hold the same tallies.
    let (code, page) = daemon
        .get("/projections/word-count/docs/dictionary/d")
        .await;
    assert_eq!(code, 200, "{page}");
    assert_eq!(
        page["words"]["dictionary"],
        count(&daemon, "dictionary").await
    );
    // The agent did not project them again: each event applied once.
    let p = daemon.projection("word-count", 1).await;
    assert_eq!(p["events_applied"], 4 * PER_CLIENT, "{p}");
    assert_eq!(p["status"], "running", "{p}");
    eprintln!("{conflicts} conflicts among 4 clients, none answered by a stale read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_error_rejects_the_append_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), Some(CONFIG));
    daemon.deploy(refract_test_artifacts::WORD_COUNT).await;
    if crate::common::backend::is_postgres() {
        // PostgreSQL numbers events after their transaction: inline runs async.
        let (code, out) = update(&daemon, "apple", 1, 0).await;
        assert_eq!((code, out.get("inline")), (200, None), "{out}");
        let p = daemon.projection("word-count", 1).await;
        assert_eq!(p["lifecycle"], "async", "{p}");
        return;
    }
    let (code, out) = update(&daemon, "apple", 1, 0).await;
    assert_eq!(code, 200, "{out}");
    let head = out["last_sequence"].clone();

    // A good event and one the guest refuses (an empty word names no document).
    let events = [
        (
            "ValueUpdated".to_owned(),
            json!({"Key": "apple", "Value": 2}),
        ),
        ("ValueUpdated".to_owned(), json!({"Key": "", "Value": 1})),
    ];
    let (code, out) = daemon.append("word-apple", Some(1), &events).await;
    assert_eq!(code, 422, "{out}");
    let message = out["error"].as_str().unwrap_or_default();
    for needle in [
        "word-count@v1",
        "event #1 of the append",
        "nothing was written",
    ] {
        assert!(
            message.contains(needle),
            "{message:?} should say {needle:?}"
        );
    }
    // Nothing of it: not the events, not the documents, not the progress.
    let (_, stream) = daemon.get("/streams/word-apple").await;
    assert_eq!(stream["version"], 1, "{stream}");
    assert_eq!(count(&daemon, "apple").await, 1);
    let p = daemon.projection("word-count", 1).await;
    assert_eq!(
        (&p["head"], &p["status"]),
        (&head, &json!("running")),
        "{p}"
    );
    // The same stream goes on as if the refused append never happened.
    let (code, out) = update(&daemon, "apple", 2, 1).await;
    assert_eq!(code, 200, "{out}");
    assert_eq!(count(&daemon, "apple").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_inline_version_is_deferred_to_its_agent() {
    if crate::common::backend::is_postgres() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), Some(CONFIG));
    daemon.deploy(refract_test_artifacts::WORD_COUNT).await;
    let (code, out) = daemon
        .post_json("/projections/word-count/versions/1/pause", &json!({}))
        .await;
    assert_eq!(code, 200, "{out}");
    let (code, out) = update(&daemon, "pear", 1, 0).await;
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["inline"][0]["projected"], false, "{out}");
    assert!(
        out["inline"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("paused")),
        "{out}"
    );
    assert_eq!(count(&daemon, "pear").await, 0);
    // Resumed, its agent catches up; then appends project inline again.
    let (code, out) = daemon
        .post_json("/projections/word-count/versions/1/resume", &json!({}))
        .await;
    assert_eq!(code, 200, "{out}");
    let head = daemon
        .wait_caught_up("word-count", 1, 1, Duration::from_secs(30))
        .await;
    assert_eq!(head["events_applied"], 1, "{head}");
    assert_eq!(count(&daemon, "pear").await, 1);
    let (code, out) = update(&daemon, "pear", 2, 1).await;
    assert_eq!(
        (code, &out["inline"][0]["projected"]),
        (200, &json!(true)),
        "{out}"
    );
    assert_eq!(count(&daemon, "pear").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_that_loops_inline_is_stopped_by_its_budget_and_the_append_refused() {
    if crate::common::backend::is_postgres() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config = "[limits]\ninline_budget_ms = 200\n\
                  [components.hostile-loop]\nlifecycle = \"inline\"\n";
    let daemon = Daemon::start(&dir.path().join("data"), Some(config));
    daemon.deploy(refract_test_artifacts::HOSTILE_LOOP).await;
    let started = std::time::Instant::now();
    let (code, out) = daemon
        .append("i-1", Some(0), &[("IncidentLogged".into(), json!({}))])
        .await;
    assert_eq!(code, 422, "{out}");
    let message = out["error"].as_str().unwrap_or_default();
    for needle in [
        "hostile-loop@v1",
        "inline budget of 200 ms",
        "events #0..=#0",
        "nothing was written",
    ] {
        assert!(
            message.contains(needle),
            "{message:?} should say {needle:?}"
        );
    }
    // Stopped by its deadline, not by the client's patience.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let (code, stream) = daemon.get("/streams/i-1").await;
    assert_eq!(code, 404, "nothing appended: {stream}");
    // Other streams' appends of other types go on (it handles none of them).
    let (code, out) = daemon
        .append("other-1", Some(0), &[("Unrelated".into(), json!({}))])
        .await;
    assert_eq!((code, out.get("inline")), (200, None), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_teams_append_never_runs_the_teams_inline_code() {
    if crate::common::backend::is_postgres() {
        return;
    }
    use crate::hostile_perms::{OPS, append_as, deploy_as, status_as};
    let dir = tempfile::tempdir().expect("tempdir");
    let config = "[teams.ops]\ntoken = \"ops-token\"\n\
                  [teams.web]\ntoken = \"web-token\"\n\
                  [components.\"ops.word-count\"]\nlifecycle = \"inline\"\n";
    let daemon = Daemon::start(&dir.path().join("data"), Some(config));
    deploy_as(&daemon, OPS, refract_test_artifacts::WORD_COUNT).await;
    let web = Some("web-token");
    // Web appends an event ops' inline projection reads, one it would refuse: the
    // append stands (ops' code never runs in it) and ops' agent meets the error.
    let bad = json!({"events": [{"type": "ValueUpdated", "data": {"Key": "", "Value": 1}}]});
    let (code, out) = append_as(&daemon, web, "word-web", bad).await;
    assert_eq!((code, out.get("inline")), (200, None), "{out}");
    let good = json!({"events": [{"type": "ValueUpdated", "data": {"Key": "kiwi", "Value": 1}}]});
    let (code, out) = append_as(&daemon, OPS, "word-kiwi", good).await;
    assert_eq!(code, 200, "{out}");
    // Ops' version is paused by its agent on web's event, so ops' own append was
    // deferred (never projected past an event it has not handled).
    let started = std::time::Instant::now();
    let p = loop {
        let p = status_as(&daemon, OPS, "word-count", 1)
            .await
            .expect("status");
        if p["status"] == "paused" {
            break p;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{p}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(p["events_applied"], 0, "{p}");
    assert_eq!(out["inline"][0]["projected"], false, "{out}");
}
