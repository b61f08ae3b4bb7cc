//! A subscription's handled page commits all or nothing on PostgreSQL, and a
//! rewind moves its progress and effects back.

use super::test_db::{fresh_store, progress_of, start};
use crate::store::subscription::{DeadLetter, HandledPage, NewMessage, SubscriptionStore};
use crate::store::{
    AppendRequest, EventStore, ExpectedVersion, NewEvent, ProjectionKey, ReadBudget, StoreError,
    StreamId, now_micros,
};

pub(super) fn transfers() -> ProjectionKey {
    ProjectionKey {
        name: "transfers".into(),
        version: 1,
    }
}

fn emit(stream: &str, expected: ExpectedVersion, key: Option<&str>) -> AppendRequest {
    AppendRequest {
        stream: StreamId::new(stream).expect("valid id"),
        expected,
        idempotency_key: key.map(str::to_owned),
        tenant: None,
        team: "default".into(),
        events: vec![NewEvent {
            event_type: "MoneyWithdrawn".into(),
            data: "{\"amount\":5}".into(),
            metadata: "{}".into(),
        }],
    }
}

pub(super) fn message(id: &str) -> NewMessage {
    NewMessage {
        id: id.into(),
        url: "http://127.0.0.1:9/hook".into(),
        body: "{}".into(),
        event_sequence: Some(1),
    }
}

#[tokio::test]
async fn a_handled_page_commits_emits_messages_and_progress_together() {
    let Some(db) = fresh_store("handled page").await else {
        return;
    };
    let (s, key) = (&db.store, transfers());
    start(s, &key).await;
    s.append(emit("transfer-1", ExpectedVersion::NoStream, None))
        .await
        .expect("seed");
    let page = HandledPage {
        emits: vec![
            emit("account-a", ExpectedVersion::NoStream, Some("t1")),
            emit("account-a", ExpectedVersion::Exact(1), None),
        ],
        messages: vec![message("m1"), message("m2")],
        position: 1,
        handled: 1,
        ..HandledPage::default()
    };
    let results = s.commit_handled(&key, "team", &page).await.expect("commit");
    let got: Vec<_> = results
        .iter()
        .map(|r| (r.stream_version, r.first_sequence, r.last_sequence))
        .collect();
    assert_eq!(got, [(1, 2, 2), (2, 3, 3)], "real, increasing sequences");
    assert_eq!(
        *s.watch_head().borrow(),
        3,
        "watchers see the emitted events"
    );
    let read = s
        .read_page(0, None, ReadBudget::page(10))
        .await
        .expect("read");
    let seen: Vec<_> = read
        .events
        .iter()
        .map(|e| (e.sequence, e.stream_id.as_str(), e.stream_version))
        .collect();
    assert_eq!(
        seen,
        [
            (1, "transfer-1", 1),
            (2, "account-a", 1),
            (3, "account-a", 2)
        ]
    );
    assert_eq!(progress_of(s, &key).await, (1, 1));
    assert_eq!(s.outbox_counts(&key).await.expect("counts").pending, 2);
    let due = s.due_messages(now_micros(), 10).await.expect("due");
    assert_eq!(
        due.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["m1", "m2"]
    );
    assert_eq!(
        (due[0].subscription.clone(), due[0].team.as_str()),
        (key.clone(), "team")
    );

    // Replayed: the idempotency key returns the first result, the message is not
    // queued again.
    let replay = HandledPage {
        emits: vec![emit("account-a", ExpectedVersion::NoStream, Some("t1"))],
        messages: vec![message("m1")],
        position: 1,
        ..HandledPage::default()
    };
    let again = s
        .commit_handled(&key, "team", &replay)
        .await
        .expect("replay");
    assert_eq!(again[0], results[0]);
    assert_eq!(s.outbox_counts(&key).await.expect("counts").pending, 2);
    assert_eq!(s.head().await.expect("head"), 3);
    db.finish().await;
}

#[tokio::test]
async fn a_conflicting_emit_commits_nothing_of_the_page() {
    let Some(db) = fresh_store("conflicting emit").await else {
        return;
    };
    let (s, key) = (&db.store, transfers());
    start(s, &key).await;
    s.append(emit("account-b", ExpectedVersion::NoStream, None))
        .await
        .expect("seed");
    let page = HandledPage {
        emits: vec![
            emit("account-a", ExpectedVersion::NoStream, Some("t2")),
            // Stale: account-b is at version 1.
            emit("account-b", ExpectedVersion::NoStream, None),
        ],
        messages: vec![message("m3")],
        dead_letter: Some(DeadLetter {
            sequence: 1,
            error: "boom".into(),
        }),
        position: 1,
        handled: 1,
        ..HandledPage::default()
    };
    let err = s
        .commit_handled(&key, "team", &page)
        .await
        .expect_err("conflict");
    assert!(
        matches!(&err, StoreError::Conflict { stream, .. } if stream == "account-b"),
        "{err}"
    );
    assert_eq!(
        s.head().await.expect("head"),
        1,
        "the first emit is gone too"
    );
    let account_a = StreamId::new("account-a").expect("id");
    assert_eq!(s.read_stream(&account_a, 1).await.expect("read").0, 0);
    assert_eq!(s.outbox_counts(&key).await.expect("counts").pending, 0);
    assert_eq!(s.dead_letter_count(&key).await.expect("dead"), 0);
    assert_eq!(s.effects_high_water(&key).await.expect("high water"), 0);
    assert_eq!(progress_of(s, &key).await, (0, 0));
    // The idempotency key was not spent either.
    let page = HandledPage {
        emits: vec![emit("account-a", ExpectedVersion::NoStream, Some("t2"))],
        position: 1,
        ..HandledPage::default()
    };
    let done = s
        .commit_handled(&key, "team", &page)
        .await
        .expect("retried page");
    assert_eq!(done[0].first_sequence, 2);
    assert_eq!(s.head().await.expect("head"), 2);
    db.finish().await;
}

#[tokio::test]
async fn a_page_behind_the_progress_writes_nothing() {
    let Some(db) = fresh_store("page behind").await else {
        return;
    };
    let (s, key) = (&db.store, transfers());
    start(s, &key).await;
    let ahead = HandledPage {
        position: 5,
        ..HandledPage::default()
    };
    s.commit_handled(&key, "team", &ahead).await.expect("ahead");
    let behind = HandledPage {
        emits: vec![emit("account-c", ExpectedVersion::Any, None)],
        messages: vec![message("m9")],
        position: 4,
        ..HandledPage::default()
    };
    let err = s
        .commit_handled(&key, "team", &behind)
        .await
        .expect_err("moved on");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(s.head().await.expect("head"), 0);
    assert_eq!(s.outbox_counts(&key).await.expect("counts").pending, 0);
    assert_eq!(progress_of(s, &key).await.0, 5);
    // A version without progress (never prepared, or dropped) commits nothing.
    let gone = ProjectionKey {
        name: "gone".into(),
        version: 1,
    };
    let err = s
        .commit_handled(&gone, "team", &behind)
        .await
        .expect_err("no progress");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(s.head().await.expect("head"), 0);
    db.finish().await;
}

#[tokio::test]
async fn an_invalid_emit_is_refused_before_anything_is_written() {
    let Some(db) = fresh_store("invalid emit").await else {
        return;
    };
    let (s, key) = (&db.store, transfers());
    start(s, &key).await;
    let mut empty = emit("account-d", ExpectedVersion::Any, None);
    empty.events.clear();
    let page = HandledPage {
        emits: vec![emit("account-c", ExpectedVersion::Any, None), empty],
        messages: vec![message("m8")],
        position: 1,
        ..HandledPage::default()
    };
    let err = s
        .commit_handled(&key, "team", &page)
        .await
        .expect_err("empty");
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert_eq!(s.head().await.expect("head"), 0);
    assert_eq!(s.outbox_counts(&key).await.expect("counts").pending, 0);
    assert_eq!(progress_of(s, &key).await.0, 0);
    db.finish().await;
}

#[tokio::test]
async fn rewind_moves_progress_back_and_lowers_the_high_water_only_when_asked() {
    let Some(db) = fresh_store("rewind").await else {
        return;
    };
    let (s, key) = (&db.store, transfers());
    start(s, &key).await;
    let page = HandledPage {
        position: 9,
        ..HandledPage::default()
    };
    s.commit_handled(&key, "team", &page).await.expect("commit");
    assert_eq!(s.effects_high_water(&key).await.expect("hw"), 9);
    sqlx::query("UPDATE progress SET status = 'failed', error = 'boom'")
        .execute(s.pool())
        .await
        .expect("fail it");

    s.rewind(&key, 4, false).await.expect("rewind");
    assert_eq!(progress_of(s, &key).await.0, 4);
    let (status, error): (String, Option<String>) =
        sqlx::query_as("SELECT status, error FROM progress")
            .fetch_one(s.pool())
            .await
            .expect("status");
    assert_eq!((status.as_str(), error), ("running", None));
    assert_eq!(
        s.effects_high_water(&key).await.expect("hw"),
        9,
        "effects held"
    );
    // Committing a replayed page keeps the high water where it was.
    let replayed = HandledPage {
        position: 6,
        ..HandledPage::default()
    };
    s.commit_handled(&key, "team", &replayed)
        .await
        .expect("replayed");
    assert_eq!(s.effects_high_water(&key).await.expect("hw"), 9);

    s.rewind(&key, -3, true).await.expect("rewind with effects");
    assert_eq!(progress_of(s, &key).await.0, 0, "never below the start");
    assert_eq!(s.effects_high_water(&key).await.expect("hw"), 0);
    s.rewind(&key, 2, true).await.expect("forward");
    assert_eq!(progress_of(s, &key).await.0, 2);
    assert_eq!(
        s.effects_high_water(&key).await.expect("hw"),
        0,
        "a rewind never raises the high water"
    );

    let missing = ProjectionKey {
        name: "missing".into(),
        version: 1,
    };
    let err = s.rewind(&missing, 0, true).await.expect_err("no progress");
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert_eq!(s.effects_high_water(&missing).await.expect("hw"), 0);
    db.finish().await;
}
