//! The SQLite store's append and read semantics, on a real database file.

use super::*;
use crate::store::{AppendRequest, ExpectedVersion, NewEvent, ReadBudget, StreamId};

/// A store in a new file of its own (kept while the directory lives).
pub(super) async fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("t.db"))
        .await
        .expect("open");
    (dir, store)
}

fn req(stream: &str, expected: ExpectedVersion, n: usize) -> AppendRequest {
    AppendRequest {
        stream: StreamId::new(stream).expect("valid id"),
        expected,
        idempotency_key: None,
        tenant: None,
        team: "default".into(),
        events: (0..n)
            .map(|i| NewEvent {
                event_type: "T".into(),
                data: format!("{{\"i\":{i}}}"),
                metadata: "{}".into(),
            })
            .collect(),
    }
}

fn conflict_current(e: StoreError) -> u64 {
    match e {
        StoreError::Conflict { current, .. } => current,
        other => panic!("expected a conflict, got {other}"),
    }
}

#[tokio::test]
async fn expected_versions_are_checked_and_rejected_appends_write_nothing() {
    let (_dir, s) = store().await;
    let r = s
        .append(req("a", ExpectedVersion::NoStream, 3))
        .await
        .expect("new stream");
    assert_eq!(
        (r.stream_version, r.first_sequence, r.last_sequence),
        (3, 1, 3)
    );
    let e = s
        .append(req("a", ExpectedVersion::NoStream, 1))
        .await
        .expect_err("exists");
    assert_eq!(conflict_current(e), 3);
    let e = s
        .append(req("a", ExpectedVersion::Exact(2), 1))
        .await
        .expect_err("stale");
    assert_eq!(conflict_current(e), 3);
    // Exactly n on a stream that does not exist is a conflict, not a creation.
    let e = s
        .append(req("b", ExpectedVersion::Exact(1), 1))
        .await
        .expect_err("missing");
    assert_eq!(conflict_current(e), 0);
    assert_eq!(
        s.read_stream(&StreamId::new("b").expect("id"), 1)
            .await
            .expect("read")
            .0,
        0
    );
    let r = s
        .append(req("a", ExpectedVersion::Exact(3), 2))
        .await
        .expect("in order");
    assert_eq!(
        (r.stream_version, r.first_sequence, r.last_sequence),
        (5, 4, 5)
    );
    let r = s
        .append(req("b", ExpectedVersion::Any, 2))
        .await
        .expect("any");
    assert_eq!((r.stream_version, r.first_sequence), (2, 6));
    let r = s
        .append(req("b", ExpectedVersion::Any, 1))
        .await
        .expect("any again");
    assert_eq!(r.stream_version, 3);
    assert_eq!(
        s.head().await.expect("head"),
        8,
        "rejected appends took no sequence"
    );
    let (version, events) = s
        .read_stream(&StreamId::new("a").expect("id"), 1)
        .await
        .expect("read");
    assert_eq!(version, 5);
    let id = |s: &str| StreamId::new(s).expect("id");
    assert_eq!(s.stream_version(&id("a")).await.expect("version"), 5);
    assert_eq!(s.stream_version(&id("nowhere")).await.expect("none"), 0);
    let versions: Vec<u64> = events.iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, [1, 2, 3, 4, 5]);
    assert_eq!(events[3].data, r#"{"i":0}"#);
}

#[tokio::test]
async fn pages_filter_by_type_and_report_how_far_they_scanned() {
    let (_dir, s) = store().await;
    for (stream, ty) in [("a", "X"), ("b", "Y"), ("a", "X"), ("c", "Y"), ("c", "Z")] {
        let mut r = req(stream, ExpectedVersion::Any, 1);
        r.events[0].event_type = ty.into();
        s.append(r).await.expect("append");
    }
    let types = ["Y".to_owned()];
    let page = s
        .read_page(0, Some(&types), ReadBudget::page(10))
        .await
        .expect("page");
    let seqs: Vec<i64> = page.events.iter().map(|e| e.sequence).collect();
    assert_eq!(
        (seqs, page.scanned_to),
        (vec![2, 4], 5),
        "a short page scanned to the head"
    );
    let page = s
        .read_page(0, Some(&types), ReadBudget::page(1))
        .await
        .expect("page");
    assert_eq!(
        page.scanned_to, 2,
        "a full page scanned only to its last event"
    );
    let page = s
        .read_page(5, None, ReadBudget::page(10))
        .await
        .expect("page");
    assert!(page.events.is_empty());
    assert_eq!(page.scanned_to, 5);
}

#[tokio::test]
async fn pages_stop_at_their_byte_budget_and_a_big_event_goes_alone() {
    let (_dir, s) = store().await;
    let sized = |n: usize| {
        let mut r = req("s", ExpectedVersion::Any, 1);
        r.events[0].data = format!("\"{}\"", "x".repeat(n));
        r
    };
    // Events of about 100, 100, 5,000, 100 and 100 bytes (data + "{}" metadata).
    for n in [98, 98, 4_998, 98, 98] {
        s.append(sized(n)).await.expect("append");
    }
    let budget = ReadBudget {
        events: 10,
        bytes: 300,
    };
    let page = s.read_page(0, None, budget).await.expect("page");
    let seqs: Vec<i64> = page.events.iter().map(|e| e.sequence).collect();
    assert_eq!(
        (seqs, page.scanned_to),
        (vec![1, 2], 2),
        "cut before the big one"
    );
    let page = s.read_page(2, None, budget).await.expect("page");
    let seqs: Vec<i64> = page.events.iter().map(|e| e.sequence).collect();
    assert_eq!(
        (seqs, page.scanned_to),
        (vec![3], 3),
        "a big event goes alone"
    );
    let page = s.read_page(3, None, budget).await.expect("page");
    let seqs: Vec<i64> = page.events.iter().map(|e| e.sequence).collect();
    assert_eq!((seqs, page.scanned_to), (vec![4, 5], 5), "the rest fits");
    let got = s.read_events(&[5, 1, 99], 1 << 20).await.expect("events");
    let seqs: Vec<i64> = got.iter().map(|e| e.sequence).collect();
    assert_eq!(seqs, vec![1, 5]);
    let got = s.read_events(&[4, 3, 2], 300).await.expect("events");
    let seqs: Vec<i64> = got.iter().map(|e| e.sequence).collect();
    assert_eq!(seqs, vec![2], "the big event 3 waits for the next read");
}

#[tokio::test]
async fn an_event_over_the_maximum_size_is_refused_and_nothing_is_written() {
    let (_dir, s) = store().await;
    let s = s.with_max_event_bytes(1_000);
    let mut r = req("s", ExpectedVersion::Any, 3);
    r.events[2].data = format!("\"{}\"", "x".repeat(1_000));
    match s.append(r).await {
        Err(StoreError::TooLarge { index, size, max }) => {
            assert_eq!((index, size, max), (2, 1_004, 1_000));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(s.head().await.expect("head"), 0);
}

#[tokio::test]
async fn idempotency_keys_belong_to_their_team() {
    let (_dir, s) = store().await;
    let keyed = |stream: &str, team: &str| AppendRequest {
        idempotency_key: Some("transfer-1/withdraw".into()),
        team: team.into(),
        ..req(stream, ExpectedVersion::Any, 1)
    };
    // Another team used the key first (on another stream, and on the same one).
    let theirs = s.append(keyed("secret", "mallory")).await.expect("mallory");
    s.append(keyed("ledger", "mallory"))
        .await
        .expect_err("mallory's own reuse");
    let ours = s
        .append(keyed("ledger", "ops"))
        .await
        .expect("ops is not blocked");
    assert!(ours.first_sequence > theirs.last_sequence, "{ours:?}");
    assert_eq!(s.append(keyed("ledger", "ops")).await.expect("retry"), ours);
    match s.append(keyed("other", "ops")).await {
        Err(StoreError::KeyReused { stream, .. }) => assert_eq!(stream, "ledger"),
        other => panic!("expected a reuse naming ops's stream, got {other:?}"),
    }
    assert_eq!(
        s.idempotency_key("ops", "transfer-1/withdraw")
            .await
            .expect("read")
            .map(|(stream, _)| stream),
        Some("ledger".to_owned())
    );
    let (v, _) = s
        .read_stream(&StreamId::new("ledger").expect("id"), 1)
        .await
        .expect("read");
    assert_eq!(v, 1, "one append of ops, none of mallory's on ledger");
}

#[tokio::test]
async fn an_append_wakes_only_the_watchers_of_its_types() {
    let (_dir, s) = store().await;
    let of_t = s
        .watch_types(&["T".into()])
        .expect("sqlite tells types apart");
    let of_u = s.watch_types(&["U".into(), "V".into()]).expect("watcher");
    let never = std::time::Duration::from_millis(50);
    s.append(req("a", ExpectedVersion::Any, 2))
        .await
        .expect("append of T");
    tokio::time::timeout(never, of_t.notified())
        .await
        .expect("the watcher of T is woken");
    assert!(
        tokio::time::timeout(never, of_u.notified()).await.is_err(),
        "the watcher of U and V sleeps through an append of T"
    );
    // A dropped watcher is forgotten at the next append of its type.
    drop(of_t);
    s.append(req("b", ExpectedVersion::Any, 1))
        .await
        .expect("append");
    let heads = s.heads.read();
    assert!(!heads.watchers.contains_key("T"), "no watcher of T is left");
    assert_eq!(heads.watchers.get("U").map(Vec::len), Some(1));
}

#[tokio::test]
async fn documents_are_listed_in_byte_order_by_prefix_and_field_within_budgets() {
    let (_dir, s) = store().await;
    crate::store::doc_list_tests::listing_contract(&s).await;
}
