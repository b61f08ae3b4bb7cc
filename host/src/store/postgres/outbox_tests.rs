//! The outbox on PostgreSQL: a message id is queued once, failed deliveries are
//! retried then given up and counted; dead letters are kept with their page.

use super::subscription_tests::{message, transfers};
use super::test_db::{fresh_store, start};
use crate::store::ProjectionKey;
use crate::store::now_micros;
use crate::store::subscription::{DeadLetter, HandledPage, SubscriptionStore};

#[tokio::test]
async fn a_message_id_is_queued_once() {
    let Some(db) = fresh_store("message once").await else {
        return;
    };
    let (s, key) = (&db.store, transfers());
    start(s, &key).await;
    let page = HandledPage {
        messages: vec![message("a"), message("b"), message("a")],
        position: 1,
        ..HandledPage::default()
    };
    s.commit_handled(&key, "team", &page).await.expect("commit");
    // Another version queueing an id already queued: still one delivery.
    let other = ProjectionKey {
        name: "mailer".into(),
        version: 2,
    };
    start(s, &other).await;
    let page = HandledPage {
        messages: vec![message("b"), message("c")],
        position: 1,
        ..HandledPage::default()
    };
    s.commit_handled(&other, "ops", &page)
        .await
        .expect("commit");
    let due = s.due_messages(now_micros(), 10).await.expect("due");
    let ids: Vec<_> = due.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(s.outbox_counts(&key).await.expect("counts").pending, 2);
    assert_eq!(s.outbox_counts(&other).await.expect("counts").pending, 1);
    let mut teams = s.due_teams(now_micros()).await.expect("teams");
    teams.sort();
    assert_eq!(teams, ["ops", "team"]);
    let ops = s
        .due_team_messages("ops", now_micros(), 10)
        .await
        .expect("ops");
    assert_eq!(ops.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["c"]);
    assert_eq!(ops[0].subscription, other);
    let one = s
        .due_team_messages("team", now_micros(), 1)
        .await
        .expect("1");
    assert_eq!(one.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["a"]);
    assert!(s.due_teams(0).await.expect("none due yet").is_empty());
    db.finish().await;
}

#[tokio::test]
async fn failed_deliveries_are_retried_then_given_up_and_counted() {
    let Some(db) = fresh_store("retries").await else {
        return;
    };
    let (s, key) = (&db.store, transfers());
    start(s, &key).await;
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
    let c = s.outbox_counts(&key).await.expect("counts");
    assert_eq!((c.pending, c.delivered, c.failed), (1, 1, 0));
    let retry = s.due_messages(later, 10).await.expect("due later");
    assert_eq!(
        (retry[0].attempts, retry[0].last_error.as_deref()),
        (1, Some("HTTP 503"))
    );
    s.message_failed(retry[0].seq, "HTTP 500", None)
        .await
        .expect("give up");
    assert!(s.due_messages(i64::MAX, 10).await.expect("due").is_empty());
    let c = s.outbox_counts(&key).await.expect("counts");
    assert_eq!((c.pending, c.delivered, c.failed), (0, 1, 1));
    assert_eq!(
        c.last_error.as_deref(),
        Some("HTTP 500"),
        "failures are visible"
    );
    db.finish().await;
}

#[tokio::test]
async fn dead_letters_are_recorded_with_the_page_and_read_in_pages() {
    let Some(db) = fresh_store("dead letters").await else {
        return;
    };
    let (s, key) = (&db.store, transfers());
    start(s, &key).await;
    // The last page records sequence 5 again (its error is replaced).
    let pages = [
        (3, 3, "first"),
        (5, 5, "second"),
        (7, 7, "third"),
        (8, 5, "again"),
    ];
    for (position, sequence, error) in pages {
        let page = HandledPage {
            position,
            dead_letter: Some(DeadLetter {
                sequence,
                error: error.into(),
            }),
            ..HandledPage::default()
        };
        s.commit_handled(&key, "team", &page).await.expect("commit");
    }
    let dl = |sequence, error: &str| DeadLetter {
        sequence,
        error: error.into(),
    };
    assert_eq!(s.dead_letter_count(&key).await.expect("count"), 3);
    assert_eq!(
        s.dead_letters(&key).await.expect("all"),
        [dl(3, "first"), dl(5, "again"), dl(7, "third")]
    );
    assert_eq!(
        s.dead_letter_page(&key, 3, 1).await.expect("page"),
        [dl(5, "again")]
    );
    assert_eq!(
        s.dead_letter_page(&key, 5, 0).await.expect("at least one"),
        [dl(7, "third")]
    );
    assert!(
        s.dead_letter_page(&key, 7, 10)
            .await
            .expect("end")
            .is_empty()
    );
    db.finish().await;
}

#[tokio::test]
async fn pages_committed_side_by_side_queue_a_shared_message_once() {
    let Some(db) = fresh_store("side by side").await else {
        return;
    };
    let s = &db.store;
    let keys: Vec<ProjectionKey> = (1..=4)
        .map(|version| ProjectionKey {
            name: "fanout".into(),
            version,
        })
        .collect();
    for key in &keys {
        start(s, key).await;
    }
    let page = HandledPage {
        messages: vec![message("shared"), message("shared-2")],
        position: 1,
        ..HandledPage::default()
    };
    let mut commits = tokio::task::JoinSet::new();
    for key in keys {
        let (s, page) = (s.clone(), page.clone());
        commits.spawn(async move { s.commit_handled(&key, "team", &page).await });
    }
    while let Some(done) = commits.join_next().await {
        done.expect("task").expect("commit");
    }
    let due = s.due_messages(now_micros(), 10).await.expect("due");
    let ids: Vec<_> = due.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["shared", "shared-2"]);
    db.finish().await;
}
