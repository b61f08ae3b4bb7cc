//! Bounded reads on a real database file: stream pages and consistent-read cursors.

use super::tests::store;
use std::time::Duration;

use crate::store::sqlite::SqliteStore;
use crate::store::{
    AppendRequest, DocOf, DocWrite, DocumentStore, EventStore, ExpectedVersion, NewEvent,
    ProjectionKey, ReadBudget, StreamId,
};

async fn append(s: &SqliteStore, stream: &str, ty: &str, n: usize) {
    let events = (0..n)
        .map(|i| NewEvent {
            event_type: ty.into(),
            data: format!("{{\"i\":{i}}}"),
            metadata: "{}".into(),
        })
        .collect();
    let req = AppendRequest {
        stream: StreamId::new(stream).expect("id"),
        expected: ExpectedVersion::Any,
        idempotency_key: None,
        tenant: None,
        team: "default".into(),
        events,
    };
    s.append(req).await.expect("append");
}

#[tokio::test]
async fn stream_pages_are_bounded_and_cover_the_stream_once() {
    let (_dir, s) = store().await;
    append(&s, "a", "T", 250).await;
    append(&s, "b", "T", 5).await;
    let a = StreamId::new("a").expect("id");
    let (mut from, mut seen) = (1, Vec::new());
    loop {
        let (version, page) = s.read_stream_page(&a, from, 70).await.expect("page");
        assert_eq!(version, 250);
        assert!(page.len() <= 70);
        let Some(last) = page.last() else { break };
        from = last.stream_version + 1;
        seen.extend(page.iter().map(|e| e.stream_version));
    }
    assert_eq!(seen, (1..=250).collect::<Vec<u64>>());
    let none = StreamId::new("none").expect("id");
    let (version, page) = s.read_stream_page(&none, 1, 10).await.expect("page");
    assert_eq!((version, page.len()), (0, 0));
}

fn budget(events: usize, bytes: usize) -> ReadBudget {
    ReadBudget { events, bytes }
}

fn later(types: &[String], budget: ReadBudget) -> crate::store::Later<'_> {
    crate::store::Later { types, budget }
}

#[tokio::test]
async fn a_doc_read_sees_one_snapshot_of_the_given_types_and_frees_its_connection() {
    let (_dir, s) = store().await;
    let key = ProjectionKey {
        name: "p".into(),
        version: 1,
    };
    s.prepare_projection(&key).await.expect("prepare");
    append(&s, "a", "T", 3).await;
    let put = DocWrite::Put {
        id: "d".into(),
        body: "{\"n\":3}".into(),
    };
    let commit = crate::store::PageCommit {
        writes: vec![put],
        position: 3,
        applied: 3,
        ..Default::default()
    };
    s.commit_page(&key, &commit).await.expect("commit");
    append(&s, "a", "T", 4).await;
    append(&s, "b", "Other", 2).await;
    append(&s, "c", "T", 3).await;
    let types = ["T".to_owned()];
    let read = s
        .doc_read(&key, DocOf::Id("d"), later(&types, budget(100, 1 << 20)))
        .await
        .expect("read");
    // Every reader connection is free while the caller holds the read's events.
    let mut held = Vec::new();
    for _ in 0..4 {
        let conn = tokio::time::timeout(Duration::from_secs(2), s.reader().acquire()).await;
        held.push(conn.expect("a free reader").expect("connection"));
    }
    drop(held);
    assert_eq!(
        (read.doc.as_deref(), read.position, read.head),
        (Some("{\"n\":3}"), 3, 12)
    );
    let seqs: Vec<i64> = read
        .later
        .expect("within budget")
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!(seqs, [4, 5, 6, 7, 10, 11, 12]);

    // Exactly at the budget is fine; one event or one byte more is not.
    let read = s
        .doc_read(&key, DocOf::Id("d"), later(&types, budget(7, 1 << 20)))
        .await;
    assert_eq!(read.expect("read").later.map(|l| l.len()), Some(7));
    let read = s
        .doc_read(&key, DocOf::Id("d"), later(&types, budget(6, 1 << 20)))
        .await;
    assert!(read.expect("read").later.is_none());
    // Each event is `{"i":N}` (7 bytes) with `{}` metadata: 9 bytes.
    let read = s
        .doc_read(&key, DocOf::Id("d"), later(&types, budget(100, 63)))
        .await;
    assert_eq!(read.expect("read").later.map(|l| l.len()), Some(7));
    let read = s
        .doc_read(&key, DocOf::Id("d"), later(&types, budget(100, 62)))
        .await;
    assert!(read.expect("read").later.is_none());
}

#[tokio::test]
async fn budgeted_reads_stop_at_the_bytes_across_many_queries() {
    let (_dir, s) = store().await;
    let key = ProjectionKey {
        name: "p".into(),
        version: 1,
    };
    s.prepare_projection(&key).await.expect("prepare");
    // 2,500 events: more than one query's worth, of 9 or 10 bytes each.
    append(&s, "a", "T", 2_500).await;
    append(&s, "b", "T", 10).await;
    let types = ["T".to_owned()];
    let all = s
        .doc_read(&key, DocOf::Id("d"), later(&types, budget(10_000, 1 << 20)))
        .await;
    let all = all.expect("read").later.expect("within budget");
    assert_eq!(all.len(), 2_510);
    let bytes: usize = all.iter().map(|e| e.data.len() + e.metadata.len()).sum();
    let read = s
        .doc_read(&key, DocOf::Id("d"), later(&types, budget(10_000, bytes)))
        .await;
    assert_eq!(read.expect("read").later.map(|l| l.len()), Some(2_510));
    let read = s
        .doc_read(
            &key,
            DocOf::Id("d"),
            later(&types, budget(10_000, bytes - 1)),
        )
        .await;
    assert!(read.expect("read").later.is_none());

    // The aggregate read: one stream's events, within the same kind of budget.
    let a = StreamId::new("a").expect("id");
    let agg = s
        .doc_read(
            &key,
            DocOf::Stream(&a),
            later(&types, budget(2_500, 1 << 20)),
        )
        .await;
    let events = agg.expect("aggregate").later.expect("within budget");
    assert_eq!(events.len(), 2_500);
    assert!(
        events
            .windows(2)
            .all(|w| w[0].stream_version + 1 == w[1].stream_version)
    );
    assert!(events.iter().all(|e| e.stream_id == "a"));
    let agg = s
        .doc_read(
            &key,
            DocOf::Stream(&a),
            later(&types, budget(2_499, 1 << 20)),
        )
        .await;
    assert!(agg.expect("aggregate").later.is_none());
    let a_bytes: usize = events.iter().map(|e| e.data.len() + e.metadata.len()).sum();
    let agg = s
        .doc_read(
            &key,
            DocOf::Stream(&a),
            later(&types, budget(2_500, a_bytes - 1)),
        )
        .await;
    assert!(agg.expect("aggregate").later.is_none());
    let other = s
        .doc_read(
            &key,
            DocOf::Stream(&a),
            later(&["U".to_owned()], budget(1, 1)),
        )
        .await;
    assert_eq!(other.expect("aggregate").later.map(|e| e.len()), Some(0));
}
