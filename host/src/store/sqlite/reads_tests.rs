//! Bounded reads on a real database file: stream pages and consistent-read cursors.

use crate::store::sqlite::SqliteStore;
use crate::store::{
    AppendRequest, DocWrite, DocumentStore, EventStore, ExpectedVersion, NewEvent, ProjectionKey,
    StreamId,
};

async fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("t.db"))
        .await
        .expect("open");
    (dir, store)
}

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

#[tokio::test]
async fn a_doc_read_sees_one_snapshot_in_pages_of_the_given_types() {
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
    let mut read = s
        .doc_read(&key, "d", &["T".to_owned()])
        .await
        .expect("read");
    assert_eq!(
        (read.doc.as_deref(), read.position, read.head),
        (Some("{\"n\":3}"), 3, 12)
    );
    // Appended after the read began: not seen.
    append(&s, "a", "T", 5).await;
    let mut seqs = Vec::new();
    loop {
        let page = read.later.next_page(3).await.expect("page");
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        seqs.extend(page.iter().map(|e| e.sequence));
    }
    assert_eq!(seqs, [4, 5, 6, 7, 10, 11, 12]);
}
