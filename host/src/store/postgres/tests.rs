//! PostgreSQL backend tests: they run where `REFRACT_TEST_DATABASE_URL` names a
//! server (each test in a database of its own, dropped after), and pass without
//! doing anything elsewhere (saying so).

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use super::test_db::fresh_store;
use crate::store::{
    AppendRequest, EventStore, ExpectedVersion, NewEvent, ReadBudget, StoreError, StreamId,
};

/// An append of `n` events of type `t` to `stream`.
pub(super) fn events(stream: &str, t: &str, n: usize) -> AppendRequest {
    AppendRequest {
        stream: StreamId::new(stream).expect("stream id"),
        expected: ExpectedVersion::Any,
        idempotency_key: None,
        tenant: None,
        team: "default".into(),
        events: (0..n)
            .map(|i| NewEvent {
                event_type: t.into(),
                data: format!("{{\"i\":{i}}}"),
                metadata: "{}".into(),
            })
            .collect(),
    }
}

#[tokio::test]
async fn appends_are_sequenced_densely_and_read_back_in_order() {
    let Some(db) = fresh_store(module_path!()).await else {
        return;
    };
    let s = &db.store;
    let a = s.append(events("a", "A", 3)).await.expect("append a");
    assert_eq!(
        (a.first_sequence, a.last_sequence, a.stream_version),
        (1, 3, 3)
    );
    let b = s.append(events("b", "B", 2)).await.expect("append b");
    assert_eq!((b.first_sequence, b.last_sequence), (4, 5));
    assert_eq!(s.head().await.expect("head"), 5);
    let page = s
        .read_page(0, None, ReadBudget::page(100))
        .await
        .expect("page");
    let seqs: Vec<i64> = page.events.iter().map(|e| e.sequence).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(page.scanned_to, 5);
    let only_b = s
        .read_page(0, Some(&["B".to_owned()]), ReadBudget::page(100))
        .await
        .expect("typed page");
    assert_eq!(only_b.events.len(), 2);
    assert_eq!(only_b.scanned_to, 5, "a short page scanned to the head");
    let (version, evs) = s
        .read_stream(&StreamId::new("a").expect("id"), 2)
        .await
        .expect("stream");
    assert_eq!(version, 3);
    assert_eq!(
        evs.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        [2, 3]
    );
    let id = |s: &str| StreamId::new(s).expect("id");
    assert_eq!(s.stream_version(&id("a")).await.expect("version"), 3);
    assert_eq!(s.stream_version(&id("nowhere")).await.expect("none"), 0);
    db.finish().await;
}

#[tokio::test]
async fn a_conflicting_append_writes_nothing_and_a_key_replays() {
    let Some(db) = fresh_store(module_path!()).await else {
        return;
    };
    let s = &db.store;
    s.append(events("a", "A", 2)).await.expect("append");
    let mut stale = events("a", "A", 1);
    stale.expected = ExpectedVersion::Exact(1);
    let err = s.append(stale).await.expect_err("conflict");
    assert!(
        matches!(err, StoreError::Conflict { current: 2, .. }),
        "{err}"
    );
    let mut keyed = events("k", "A", 2);
    keyed.idempotency_key = Some("key-1".into());
    let first = s.append(keyed.clone()).await.expect("first");
    let again = s.append(keyed).await.expect("replay");
    assert_eq!(first, again, "a retried append returns the first result");
    let mut other = events("other", "A", 1);
    other.idempotency_key = Some("key-1".into());
    let err = s.append(other).await.expect_err("key reused");
    assert!(matches!(err, StoreError::KeyReused { .. }), "{err}");
    assert_eq!(s.head().await.expect("head"), 4, "nothing else was written");
    db.finish().await;
}

/// The classic bug: a transaction that took its position first but commits last.
/// A reader following positions would pass it; the fence holds every later event
/// back until it ends, then numbers it first.
#[tokio::test]
async fn an_event_committed_late_by_an_older_transaction_is_never_skipped() {
    let Some(db) = fresh_store(module_path!()).await else {
        return;
    };
    let s = &db.store;
    let mut slow = PgConnection::connect(&db.url).await.expect("connect");
    let mut tx = slow.begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO events (stream_id, stream_version, event_type, data, metadata, created_at) \
         VALUES ('slow', 1, 'A', '{}', '{}', 0)",
    )
    .execute(&mut *tx)
    .await
    .expect("slow insert");
    // A later append commits first; its result waits for the fence, so run it
    // aside and look at what readers see meanwhile.
    let fast = tokio::spawn({
        let s = s.clone();
        async move { s.append(events("fast", "A", 1)).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!fast.is_finished(), "the append waits for its sequence");
    let page = s
        .read_page(0, None, ReadBudget::page(10))
        .await
        .expect("page");
    assert!(
        page.events.is_empty(),
        "nothing is read past an open transaction"
    );
    assert_eq!(page.scanned_to, 0);
    tx.commit().await.expect("slow commit");
    let fast = fast.await.expect("join").expect("fast append");
    assert_eq!(
        fast.first_sequence, 2,
        "the older transaction's event comes first"
    );
    let page = s
        .read_page(0, None, ReadBudget::page(10))
        .await
        .expect("page");
    let streams: Vec<&str> = page.events.iter().map(|e| e.stream_id.as_str()).collect();
    assert_eq!(streams, ["slow", "fast"]);
    db.finish().await;
}

#[tokio::test]
async fn a_rolled_back_append_leaves_no_gap_in_the_sequence() {
    let Some(db) = fresh_store(module_path!()).await else {
        return;
    };
    let s = &db.store;
    let mut conn = PgConnection::connect(&db.url).await.expect("connect");
    let mut tx = conn.begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO events (stream_id, stream_version, event_type, data, metadata, created_at) \
         VALUES ('gone', 1, 'A', '{}', '{}', 0)",
    )
    .execute(&mut *tx)
    .await
    .expect("insert");
    tx.rollback().await.expect("rollback");
    let a = s.append(events("a", "A", 2)).await.expect("append");
    assert_eq!(
        (a.first_sequence, a.last_sequence),
        (1, 2),
        "positions burned, not sequences"
    );
    db.finish().await;
}

#[tokio::test]
async fn an_append_wakes_the_watchers_of_its_types_only() {
    let Some(db) = fresh_store(module_path!()).await else {
        return;
    };
    let s = &db.store;
    let of_t = s
        .watch_types(&["T".to_owned()])
        .expect("types are told apart");
    let of_u = s
        .watch_types(&["U".to_owned()])
        .expect("types are told apart");
    let never = std::time::Duration::from_millis(300);
    s.append(events("a", "T", 2)).await.expect("append");
    tokio::time::timeout(never, of_t.notified())
        .await
        .expect("the watcher of T is woken");
    assert!(
        tokio::time::timeout(never, of_u.notified()).await.is_err(),
        "the watcher of U sleeps through an append of T"
    );
    assert_eq!(s.last_of_types(&["T".to_owned()]), Some(2));
    assert_eq!(s.last_of_types(&["U".to_owned()]), Some(0));
    // Another node's sequencer: its types are not known here, everyone reads.
    s.head_notified("7 1");
    tokio::time::timeout(never, of_u.notified())
        .await
        .expect("a head ordered elsewhere wakes every watcher");
    assert_eq!(s.last_of_types(&["U".to_owned()]), Some(7));
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_racing_each_others_passes_are_each_ordered_once() {
    let Some(db) = fresh_store(module_path!()).await else {
        return;
    };
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let s = db.store.clone();
            tokio::spawn(async move {
                let mut last = 0;
                for _ in 0..20 {
                    let r = s
                        .append(events(&format!("s{t}"), "A", 3))
                        .await
                        .expect("append");
                    assert_eq!(r.last_sequence - r.first_sequence, 2, "one append, one run");
                    assert!(r.first_sequence > last, "a stream's appends are ordered");
                    last = r.last_sequence;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let s = &db.store;
    assert_eq!(s.head().await.expect("head"), 16 * 20 * 3);
    let page = s
        .read_page(0, None, ReadBudget::page(10_000))
        .await
        .expect("page");
    let seqs: Vec<i64> = page.events.iter().map(|e| e.sequence).collect();
    assert_eq!(
        seqs,
        (1..=960).collect::<Vec<_>>(),
        "dense, each event once"
    );
    db.finish().await;
}

/// Transaction ids are cluster-wide, but a transaction open in another database
/// writes no event here: it holds nothing back.
#[tokio::test]
async fn a_transaction_open_in_another_database_holds_nothing_back() {
    let Some(db) = fresh_store(module_path!()).await else {
        return;
    };
    let Some(other) = fresh_store(module_path!()).await else {
        return;
    };
    let mut conn = PgConnection::connect(&other.url).await.expect("connect");
    let mut tx = conn.begin().await.expect("begin");
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *tx)
        .await
        .expect("take an id");
    let a = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        db.store.append(events("a", "A", 1)),
    )
    .await
    .expect("answered while the other database's transaction is open")
    .expect("append");
    assert_eq!(a.first_sequence, 1);
    assert_eq!(db.store.order_held().await.expect("held"), None);
    tx.rollback().await.expect("rollback");
    other.finish().await;
    db.finish().await;
}

/// Events committed behind an open transaction have no sequence yet: the head
/// leaves them out, so the store counts them (status adds them to the head shown,
/// and a version is never shown caught up while they wait).
#[tokio::test]
async fn committed_events_waiting_behind_the_fence_are_counted_as_unordered() {
    let Some(db) = fresh_store(module_path!()).await else {
        return;
    };
    let unordered = async || db.store.head_and_unordered().await.expect("unordered").1;
    assert_eq!(unordered().await, 0);
    let mut conn = PgConnection::connect(&db.url).await.expect("connect");
    let mut tx = conn.begin().await.expect("begin");
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *tx)
        .await
        .expect("take an id");
    let store = db.store.clone();
    let append = tokio::spawn(async move { store.append(events("a", "A", 3)).await });
    let started = std::time::Instant::now();
    while unordered().await < 3 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "never committed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        db.store.head_and_unordered().await.expect("head"),
        (0, 3),
        "not ordered yet"
    );
    let held = db
        .store
        .order_held()
        .await
        .expect("held")
        .expect("held by tx");
    assert_eq!(held.events_waiting, 3);
    assert!(
        !append.is_finished(),
        "an append answers with its sequences"
    );
    tx.rollback().await.expect("end the holder");
    let a = append.await.expect("task").expect("append");
    assert_eq!((a.first_sequence, a.last_sequence), (1, 3));
    assert_eq!(unordered().await, 0);
    db.finish().await;
}

/// A database restored into another cluster: its stored cursor is ahead of the
/// server's transaction ids, so nothing new could be ordered; opening says so.
#[tokio::test]
async fn a_store_whose_order_is_ahead_of_the_servers_transactions_is_refused() {
    let Some(db) = fresh_store(module_path!()).await else {
        return;
    };
    db.store.append(events("a", "A", 1)).await.expect("append");
    let mut conn = PgConnection::connect(&db.url).await.expect("connect");
    sqlx::query("UPDATE sequencer SET transaction_id = '4000000000000' WHERE id = 1")
        .execute(&mut conn)
        .await
        .expect("move the cursor ahead");
    let err = super::PgStore::open(&db.url).await.err().expect("refused");
    assert!(
        err.to_string().contains("another PostgreSQL cluster"),
        "{err}"
    );
    db.finish().await;
}

/// A consistent document read brings the later events in queries of
/// `BUDGET_CHUNK` (1,000): 2,500 of them cross two chunks; past the budget, none.
#[tokio::test]
async fn a_doc_read_crosses_query_chunks_and_stops_at_its_budget() {
    let Some(db) = fresh_store(module_path!()).await else {
        return;
    };
    let s = &db.store;
    s.append(events("s", "A", 2_500)).await.expect("append");
    let key = crate::store::ProjectionKey {
        name: "p".into(),
        version: 1,
    };
    crate::store::DocumentStore::prepare_projection(s, &key)
        .await
        .expect("prepare");
    let types = ["A".to_owned()];
    let read = |events| crate::store::Later {
        types: &types,
        budget: ReadBudget {
            events,
            bytes: 64 << 20,
        },
    };
    let of = crate::store::DocOf::Id("d");
    let all = crate::store::DocumentStore::doc_read(s, &key, of, read(10_000))
        .await
        .expect("read");
    let later = all.later.expect("within the budget");
    assert_eq!(later.len(), 2_500);
    assert_eq!(later.last().map(|e| e.sequence), Some(2_500));
    let over = crate::store::DocumentStore::doc_read(s, &key, of, read(2_000))
        .await
        .expect("read");
    assert!(over.later.is_none(), "past the budget nothing is kept");
    db.finish().await;
}

#[tokio::test]
async fn a_connection_put_back_outside_a_transaction_is_reused() {
    let Some(db) = fresh_store(module_path!()).await else {
        return;
    };
    let s = &db.store;
    let mut pids = std::collections::HashSet::new();
    for n in 0..30 {
        s.append(events(&format!("s-{n}"), "A", 1))
            .await
            .expect("append");
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&s.pool)
            .await
            .expect("pid");
        pids.insert(pid);
    }
    // The pool keeps up to 16: a check that closed every connection put back
    // would show about one new backend per statement.
    assert!(pids.len() <= 16, "{} backends for 30 rounds", pids.len());
    db.finish().await;
}

#[tokio::test]
async fn a_connection_left_in_a_transaction_is_closed_not_reused() {
    let Some(db) = fresh_store(module_path!()).await else {
        return;
    };
    let s = &db.store;
    for n in 0..20 {
        // As a caller dropped while its BEGIN was on the wire leaves it: in a
        // read-only transaction sqlx does not know of.
        let mut conn = s.pool.acquire().await.expect("acquire");
        sqlx::query(super::reads::SNAPSHOT)
            .execute(&mut *conn)
            .await
            .expect("begin");
        drop(conn);
        s.append(events(&format!("s-{n}"), "A", 1))
            .await
            .expect("an append never runs inside another's transaction");
    }
}
