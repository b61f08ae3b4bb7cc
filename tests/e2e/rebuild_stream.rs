//! Rebuilding one stream's documents (issue 14, item 5): after a bad build wrote
//! wrong documents and a fixed one went in place, `POST .../rebuild?stream=<id>`
//! folds again exactly the documents that stream's events touch, from every event
//! that touches them, and leaves every other document as it was.

use std::collections::BTreeMap;
use std::time::Duration;

use refract_test_artifacts::{VALUE_SUM, VALUE_SUM_DOUBLED, WORD_COUNTER};
use serde_json::{Value, json};

use crate::common::Daemon;

/// Appends `values` to `stream` as `ValueAdded` events; returns the last sequence.
async fn rebuild(daemon: &Daemon, path: &str) -> (u16, Value) {
    daemon.request(reqwest::Method::POST, path, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_rebuild_repairs_that_streams_document_and_no_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), None);
    daemon.deploy(VALUE_SUM).await;
    let streams: Vec<String> = (0..10).map(|i| format!("s-{i}")).collect();
    let mut head = 0;
    for s in &streams {
        head = daemon.add_values(s, &[1, 2, 3, 4, 5]).await;
    }
    daemon
        .wait_caught_up("value-sum", 1, head, Duration::from_secs(60))
        .await;
    // The bad build counts every later value twice: 15 + 2 * 40 = 95, not 55.
    daemon.hotfix(VALUE_SUM_DOUBLED).await;
    for s in &streams {
        head = daemon.add_values(s, &[10, 30]).await;
    }
    daemon
        .wait_caught_up("value-sum", 1, head, Duration::from_secs(60))
        .await;
    let (_, doc) = daemon.get("/projections/value-sum/docs/s-3").await;
    assert_eq!(doc["sum"], 95, "the bad build's document: {doc}");

    daemon.hotfix(VALUE_SUM).await;
    let (code, body) = rebuild(
        &daemon,
        "/projections/value-sum/versions/1/rebuild?stream=s-3",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let done = &body["rebuilt"];
    assert_eq!(done["stream_events"], 7, "{body}");
    assert_eq!(done["documents"], 1, "{body}");
    assert_eq!(done["events_applied"], 7, "{body}");
    assert_eq!(
        done["events_read"], 7,
        "a per-stream projection reads the stream alone: {body}"
    );
    let (_, doc) = daemon.get("/projections/value-sum/docs/s-3").await;
    assert_eq!(doc, json!({"sum": 55, "count": 7}), "repaired");
    let (_, doc) = daemon.get("/projections/value-sum/docs/s-4").await;
    assert_eq!(
        doc["sum"], 95,
        "another stream's document is left alone: {doc}"
    );

    // The version goes on from where it was, on the repaired document.
    let head = daemon.add_values("s-3", &[100]).await;
    daemon
        .wait_caught_up("value-sum", 1, head, Duration::from_secs(60))
        .await;
    let (_, doc) = daemon.get("/projections/value-sum/docs/s-3").await;
    assert_eq!(doc, json!({"sum": 155, "count": 8}));

    // A stream with no events touches nothing; bad arguments are named.
    let (code, body) = rebuild(
        &daemon,
        "/projections/value-sum/versions/1/rebuild?stream=nothing-here",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["rebuilt"]["documents"], 0, "{body}");
    let (code, body) = rebuild(&daemon, "/projections/value-sum/versions/1/rebuild?stream=").await;
    assert_eq!(code, 400, "{body}");
    let (code, body) = rebuild(
        &daemon,
        "/projections/value-sum/versions/1/rebuild?stream=s-1&extra=1",
    )
    .await;
    assert_eq!(code, 400, "{body}");
    let (code, body) = rebuild(
        &daemon,
        "/projections/value-sum/versions/7/rebuild?stream=s-1",
    )
    .await;
    assert_eq!(code, 404, "{body}");
}

/// Word documents are fed by every stream: a rebuild of one stream folds the
/// words it has from every stream's events, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_rebuild_of_documents_spanning_streams_folds_every_streams_events_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), None);
    daemon.deploy(WORD_COUNTER).await;
    let mut head = 0;
    for i in 0..30 {
        let text = format!("shared word{} word{} text{i}", i % 7, i % 5);
        let (code, out) = daemon
            .append(
                &format!("t-{}", i % 6),
                None,
                &[("TextWritten".into(), json!({ "text": text }))],
            )
            .await;
        assert_eq!(code, 200, "{out}");
        head = out["last_sequence"].as_i64().expect("last_sequence");
    }
    daemon
        .wait_caught_up("word-counter", 1, head, Duration::from_secs(60))
        .await;
    let before = all_docs(&daemon).await;
    assert_eq!(before["shared"]["count"], 30, "{before:?}");

    let (code, body) = rebuild(
        &daemon,
        "/projections/word-counter/versions/1/rebuild?stream=t-2",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let done = &body["rebuilt"];
    assert_eq!(done["stream_events"], 5, "{body}");
    // t-2's texts 2, 8, 14, 20, 26: shared, text*, and words word0..6 / word0..4 between them.
    assert!(done["documents"].as_u64() > Some(5), "{body}");
    assert_eq!(done["events_read"], 30, "every stream is read: {body}");
    assert_eq!(
        all_docs(&daemon).await,
        before,
        "each word folded from every stream's events, once"
    );
}

/// Past the limit of documents one stream's rebuild may touch, nothing is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_touching_more_documents_than_a_rebuild_holds_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), None);
    daemon.deploy(WORD_COUNTER).await;
    let limit = refract::daemon::MAX_REBUILT_DOCS;
    let mut head = 0;
    for chunk in (0..=limit).collect::<Vec<_>>().chunks(2_500) {
        let text: Vec<String> = chunk.iter().map(|i| format!("w{i}")).collect();
        let (code, out) = daemon
            .append(
                "many",
                None,
                &[("TextWritten".into(), json!({ "text": text.join(" ") }))],
            )
            .await;
        assert_eq!(code, 200, "{out}");
        head = out["last_sequence"].as_i64().expect("last_sequence");
    }
    daemon
        .wait_caught_up("word-counter", 1, head, Duration::from_secs(120))
        .await;
    let (code, body) = rebuild(
        &daemon,
        "/projections/word-counter/versions/1/rebuild?stream=many",
    )
    .await;
    assert_eq!(code, 422, "{body}");
    let msg = body["error"].as_str().unwrap_or_default();
    assert!(
        msg.contains(&limit.to_string()) && msg.contains("many"),
        "{msg}"
    );
    let (_, doc) = daemon.get("/projections/word-counter/docs/w7").await;
    assert_eq!(doc["count"], 1, "the documents are as they were: {doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_rebuild_reading_more_events_than_configured_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), Some("rebuild_max_events = 5\n"));
    daemon.deploy(VALUE_SUM).await;
    daemon.deploy(WORD_COUNTER).await;
    daemon.add_values("five", &[1, 2, 3, 4, 5]).await;
    let mut head = daemon.add_values("six", &[1, 2, 3, 4, 5, 6]).await;
    daemon
        .wait_caught_up("value-sum", 1, head, Duration::from_secs(60))
        .await;
    // A per-stream projection: the stream's own events count.
    let path = "/projections/value-sum/versions/1/rebuild?stream=";
    let (code, body) = rebuild(&daemon, &format!("{path}six")).await;
    assert_eq!(code, 422, "{body}");
    let msg = body["error"].as_str().unwrap_or_default();
    assert!(
        msg.contains("stream six has more than 5 events (rebuild_max_events)"),
        "{msg}"
    );
    let (code, body) = rebuild(&daemon, &format!("{path}five")).await;
    assert_eq!(
        (code, &body["rebuilt"]["stream_events"]),
        (200, &json!(5)),
        "{body}"
    );
    // Documents spanning streams: every event read to find theirs counts.
    for n in 0..6 {
        let text = json!({"text": format!("w{n} shared")});
        let (code, out) = daemon
            .append(&format!("t-{n}"), None, &[("TextWritten".into(), text)])
            .await;
        assert_eq!(code, 200, "{out}");
        head = out["last_sequence"].as_i64().expect("last_sequence");
    }
    daemon
        .wait_caught_up("word-counter", 1, head, Duration::from_secs(60))
        .await;
    let (code, body) = rebuild(
        &daemon,
        "/projections/word-counter/versions/1/rebuild?stream=t-0",
    )
    .await;
    assert_eq!(code, 422, "{body}");
    let msg = body["error"].as_str().unwrap_or_default();
    assert!(
        msg.contains("take more than 5 events to read (rebuild_max_events)"),
        "{msg}"
    );
    let (_, doc) = daemon.get("/projections/word-counter/docs/shared").await;
    assert_eq!(doc["count"], 6, "the documents are as they were: {doc}");
}

/// Every document of the live word-counter, by id.
async fn all_docs(daemon: &Daemon) -> BTreeMap<String, Value> {
    let (code, page) = daemon
        .get("/projections/word-counter/docs?limit=1000")
        .await;
    assert_eq!(code, 200, "{page}");
    assert!(page["next"].is_null(), "one page: {page}");
    page["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .map(|d| {
            (
                d["id"].as_str().expect("id").to_owned(),
                d["document"].clone(),
            )
        })
        .collect()
}

/// A team's version rebuilds only streams its team may read: another's is refused
/// (403) before anything is read, and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_the_team_may_not_read_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = "[teams.default]\nread_streams = [\"s-*\"]\n";
    let daemon = Daemon::start(&dir.path().join("data"), Some(config));
    daemon.deploy(VALUE_SUM).await;
    daemon.add_values("secret-1", &[7]).await;
    let head = daemon.add_values("s-1", &[1]).await;
    daemon
        .wait_caught_up("value-sum", 1, head, Duration::from_secs(60))
        .await;
    let (code, body) = rebuild(
        &daemon,
        "/projections/value-sum/versions/1/rebuild?stream=secret-1",
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("may not read"),
        "{body}"
    );
    let (code, _) = daemon.get("/projections/value-sum/docs/secret-1").await;
    assert_eq!(code, 404, "never fed, never rebuilt");
    let (code, body) = rebuild(
        &daemon,
        "/projections/value-sum/versions/1/rebuild?stream=s-1",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["rebuilt"]["documents"], 1, "{body}");
}

/// A dead-lettered event stays out of a rebuild, as it was out of the documents,
/// and stays a letter (a replay applies it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_stays_out_of_a_stream_rebuild() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = "[components.value-sum]\non_error = \"dead-letter\"\nattempts = 1\n";
    let daemon = Daemon::start(&dir.path().join("data"), Some(config));
    daemon.deploy(VALUE_SUM).await;
    daemon.add_values("s-1", &[1, 2]).await;
    let (code, out) = daemon
        .append(
            "s-1",
            None,
            &[("ValueAdded".into(), json!({"value": "three"}))],
        )
        .await;
    assert_eq!(code, 200, "{out}");
    let head = daemon.add_values("s-1", &[4]).await;
    daemon
        .wait_caught_up("value-sum", 1, head, Duration::from_secs(60))
        .await;
    let (_, doc) = daemon.get("/projections/value-sum/docs/s-1").await;
    assert_eq!(doc, json!({"sum": 7, "count": 3}));
    let (code, body) = rebuild(
        &daemon,
        "/projections/value-sum/versions/1/rebuild?stream=s-1",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["rebuilt"]["stream_events"], 3,
        "the letter left out: {body}"
    );
    let (_, doc) = daemon.get("/projections/value-sum/docs/s-1").await;
    assert_eq!(doc, json!({"sum": 7, "count": 3}));
    let p = daemon.projection("value-sum", 1).await;
    assert_eq!(p["dead_letter_count"], 1, "{p}");
}
