//! A subscription's handled page commits all or nothing on PostgreSQL; the outbox
//! and the dead letters behave as on SQLite.

use std::sync::atomic::{AtomicU32, Ordering};

use super::PgStore;
use crate::store::subscription::{DeadLetter, HandledPage, NewMessage, SubscriptionStore};
use crate::store::{
    AppendRequest, EventStore, ExpectedVersion, NewEvent, ProjectionKey, ReadBudget, Store,
    StoreError, StreamId, now_micros,
};

/// A store in a database of its own on the server `REFRACT_TEST_DATABASE_URL` names.
// TODO(lead): fold into `super::tests::fresh_store` when it lands.
pub(super) struct Fresh {
    pub store: PgStore,
    server: String,
    name: String,
}

/// A new database with the migrations run, or `None` (the test is skipped) where
/// no server is named.
pub(super) async fn fresh_store(test: &str) -> Option<Fresh> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let Ok(server) = std::env::var("REFRACT_TEST_DATABASE_URL") else {
        eprintln!("{test}: skipped (REFRACT_TEST_DATABASE_URL is not set)");
        return None;
    };
    let name = format!(
        "refract_t_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    admin(&server, &format!("CREATE DATABASE {name}")).await;
    let store = PgStore::open(&with_database(&server, &name))
        .await
        .expect("open");
    Some(Fresh {
        store,
        server,
        name,
    })
}

impl Fresh {
    /// Closes the store and drops its database.
    pub(super) async fn finish(self) {
        self.store.close().await;
        admin(
            &self.server,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        )
        .await;
    }
}

async fn admin(server: &str, sql: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(server)
        .await
        .expect("connect to the test server");
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .expect(sql);
    let _ = conn.close().await;
}

/// `server` (`postgres://user@host:port/db?options`) naming database `db` instead.
fn with_database(server: &str, db: &str) -> String {
    let (url, query) = match server.split_once('?') {
        Some((u, q)) => (u, format!("?{q}")),
        None => (server, String::new()),
    };
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let base = match url[authority_start..].find('/') {
        Some(i) => &url[..authority_start + i],
        None => url,
    };
    format!("{base}/{db}{query}")
}

fn transfers() -> ProjectionKey {
    ProjectionKey {
        name: "transfers".into(),
        version: 1,
    }
}

/// Creates a version's progress row (what `prepare_subscription` does).
async fn start(s: &PgStore, key: &ProjectionKey) {
    let mut conn = s.pool().acquire().await.expect("conn");
    super::progress::insert_progress(&mut conn, key)
        .await
        .expect("progress row");
}

/// A version's (position, events applied), straight from its row.
async fn progress_of(s: &PgStore, key: &ProjectionKey) -> (i64, i64) {
    sqlx::query_as("SELECT position, events_applied FROM progress WHERE name = $1 AND version = $2")
        .bind(&key.name)
        .bind(i64::from(key.version))
        .fetch_one(s.pool())
        .await
        .expect("progress")
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

#[test]
fn the_test_database_replaces_the_servers() {
    assert_eq!(
        with_database("postgres://u@h:5432/postgres", "x"),
        "postgres://u@h:5432/x"
    );
    assert_eq!(
        with_database("postgres://u@h:5432?sslmode=disable", "x"),
        "postgres://u@h:5432/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
}
