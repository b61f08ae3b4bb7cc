//! A subscription's handled page commits all or nothing, on a real database file.

use super::*;
use crate::store::subscription::{HandledPage, NewMessage, SubscriptionStore};
use crate::store::{
    AppendRequest, DocumentStore, ExpectedVersion, NewEvent, ProjectionKey, StreamId, now_micros,
};

async fn store() -> (tempfile::TempDir, SqliteStore, ProjectionKey) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("t.db"))
        .await
        .expect("open");
    let key = ProjectionKey {
        name: "transfers".into(),
        version: 1,
    };
    store.prepare_projection(&key).await.expect("prepare");
    (dir, store, key)
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

fn message(id: &str) -> NewMessage {
    NewMessage {
        id: id.into(),
        url: "http://127.0.0.1:9/hook".into(),
        body: "{}".into(),
        event_sequence: Some(1),
    }
}

#[tokio::test]
async fn a_handled_page_commits_emits_messages_and_progress_together() {
    let (_dir, s, key) = store().await;
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
    assert_eq!(
        results.iter().map(|r| r.stream_version).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(
        *s.watch_head().borrow(),
        3,
        "watchers see the emitted events"
    );
    assert_eq!(s.progress(&key).await.expect("progress").position, 1);
    assert_eq!(s.outbox_counts(&key).await.expect("counts").pending, 2);
    let due = s.due_messages(now_micros(), 10).await.expect("due");
    assert_eq!(
        due.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["m1", "m2"]
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
}

#[tokio::test]
async fn a_conflicting_emit_commits_nothing_of_the_page() {
    let (_dir, s, key) = store().await;
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
        position: 1,
        handled: 1,
        ..HandledPage::default()
    };
    let err = s
        .commit_handled(&key, "team", &page)
        .await
        .expect_err("conflict");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(
        s.head().await.expect("head"),
        1,
        "the first emit is gone too"
    );
    assert_eq!(
        s.read_stream(&StreamId::new("account-a").expect("id"), 1)
            .await
            .expect("read")
            .0,
        0
    );
    assert_eq!(s.outbox_counts(&key).await.expect("counts").pending, 0);
    let p = s.progress(&key).await.expect("progress");
    assert_eq!((p.position, p.events_applied), (0, 0));
    // The idempotency key was not spent either.
    let page = HandledPage {
        emits: vec![emit("account-a", ExpectedVersion::NoStream, Some("t2"))],
        position: 1,
        ..HandledPage::default()
    };
    s.commit_handled(&key, "team", &page)
        .await
        .expect("retried page");
    assert_eq!(s.head().await.expect("head"), 2);
}

#[tokio::test]
async fn failed_deliveries_are_retried_then_given_up_and_counted() {
    let (_dir, s, key) = store().await;
    let page = HandledPage {
        messages: vec![message("m4"), message("m5")],
        ..HandledPage::default()
    };
    s.commit_handled(&key, "team", &page).await.expect("commit");
    let due = s.due_messages(now_micros(), 10).await.expect("due");
    let later = now_micros() + 60_000_000;
    s.message_failed(due[0].seq, "HTTP 503", Some(later))
        .await
        .expect("failed once");
    s.message_delivered(due[1].seq).await.expect("delivered");
    assert!(
        s.due_messages(now_micros(), 10)
            .await
            .expect("due")
            .is_empty()
    );
    let retry = s.due_messages(later, 10).await.expect("due later");
    assert_eq!(
        (retry[0].attempts, retry[0].last_error.as_deref()),
        (1, Some("HTTP 503"))
    );
    s.message_failed(retry[0].seq, "HTTP 503", None)
        .await
        .expect("give up");
    let c = s.outbox_counts(&key).await.expect("counts");
    assert_eq!((c.pending, c.delivered, c.failed), (0, 1, 1));
    assert_eq!(
        c.last_error.as_deref(),
        Some("HTTP 503"),
        "failures are visible"
    );
}

#[tokio::test]
async fn a_subscription_keeps_progress_but_no_document_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = SqliteStore::open(&dir.path().join("t.db"))
        .await
        .expect("open");
    let key = ProjectionKey {
        name: "mailer".into(),
        version: 1,
    };
    s.prepare_subscription(&key).await.expect("prepare");
    s.prepare_subscription(&key).await.expect("prepare again");
    assert_eq!(s.progress(&key).await.expect("progress").position, 0);
    assert!(!s.has_doc_table(&key).await.expect("table?"));
    // No table, so no document: not a database error.
    assert_eq!(s.get_doc(&key, "x").await.expect("get"), None);
    s.drop_projection(&key).await.expect("drop");
    s.progress(&key).await.expect_err("progress dropped");
    s.prepare_projection(&key).await.expect("as a projection");
    assert!(s.has_doc_table(&key).await.expect("table?"));
}
