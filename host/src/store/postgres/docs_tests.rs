//! Documents on a real PostgreSQL database (where `REFRACT_TEST_DATABASE_URL`
//! names a server): a page commits whole or not at all, loads keep to their byte
//! budget, stale commits land nothing, and documents read back as written. The helpers here serve `doc_sets_tests` too.

use std::time::Duration;

use super::PgStore;
use super::test_db::fresh_store;
use crate::store::StoreError;
use crate::store::subscription::DeadLetter;
use crate::store::{DocWrite, DocumentStore, PageCommit, Position, ProjectionKey};

pub(super) fn key(name: &str) -> ProjectionKey {
    ProjectionKey {
        name: name.into(),
        version: 1,
    }
}

pub(super) fn puts(prefix: &str, n: usize, position: Position) -> PageCommit {
    PageCommit {
        writes: (0..n)
            .map(|i| DocWrite::Put {
                id: format!("{prefix}{i}"),
                body: format!("{{\"i\":{i}}}"),
            })
            .collect(),
        position,
        applied: 1,
        ..Default::default()
    }
}

pub(super) async fn count(s: &PgStore, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(s.pool())
        .await
        .expect("count")
}

/// A document as JSON.
pub(super) fn json(doc: Option<String>) -> Option<serde_json::Value> {
    doc.map(|d| serde_json::from_str(&d).expect("stored JSON"))
}

/// Waits (up to 20 s) until no dropped set is left, then says how many documents remain.
pub(super) async fn purged(s: &PgStore) -> i64 {
    for _ in 0..400 {
        if count(s, "SELECT COUNT(*) FROM doc_sets WHERE dropped").await == 0 {
            return count(s, "SELECT COUNT(*) FROM documents").await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("dropped sets were not purged");
}

#[tokio::test]
async fn a_page_commits_its_documents_and_progress_and_loads_within_a_budget() {
    let Some(db) = fresh_store(module_path!()).await else {
        return;
    };
    let s = &db.store;
    let k = key("orders");
    s.prepare_projection(&k).await.expect("prepare");
    s.prepare_projection(&k)
        .await
        .expect("prepare is idempotent");
    assert!(!s.has_docs(&k).await.expect("has docs"));
    // 1,000 documents of 7 bytes ({"i":0} .. {"i":9}), 8 and 9 bytes.
    s.commit_page(&k, &puts("d", 1_000, 4))
        .await
        .expect("commit");
    let mut page = puts("x", 0, 6);
    page.writes = vec![
        DocWrite::Delete { id: "d999".into() },
        DocWrite::Put {
            id: "d1".into(),
            body: r#"{"i":1,"again":true}"#.into(),
        },
    ];
    page.skipped = 2;
    s.commit_page(&k, &page).await.expect("second page");
    assert!(s.has_docs(&k).await.expect("has docs"));
    assert_eq!(
        json(s.get_doc(&k, "d1").await.expect("get")),
        Some(serde_json::json!({"i": 1, "again": true}))
    );
    assert_eq!(s.get_doc(&k, "d999").await.expect("get deleted"), None);
    assert_eq!(s.get_doc(&k, "nul\0id").await.expect("get"), None);
    let p = s.progress(&k).await.expect("progress");
    assert_eq!((p.position, p.events_applied, p.events_skipped), (6, 2, 2));
    let ids: Vec<String> = (2..999).map(|i| format!("d{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let bytes = 8 * 7 + 90 * 8 + 899 * 9;
    let all = s.load_docs_within(&k, &refs, bytes).await.expect("load");
    let all = all.expect("within the budget");
    assert_eq!(all.len(), 997);
    assert_eq!(
        json(all.get("d42").cloned()),
        Some(serde_json::json!({"i": 42}))
    );
    let over = s
        .load_docs_within(&k, &refs, bytes - 1)
        .await
        .expect("load");
    assert!(over.is_none(), "one byte past the budget reads nothing");
    // Missing documents cost nothing.
    let some = s
        .load_docs_within(&k, &["d2", "nope", "d999"], 7)
        .await
        .expect("load");
    assert_eq!(some.map(|d| d.len()), Some(1));
    // A subscription keeps no documents, and an unknown version has none.
    let sub = key("mailer");
    s.prepare_subscription(&sub).await.expect("subscription");
    assert_eq!(s.get_doc(&sub, "d2").await.expect("get"), None);
    assert!(!s.has_docs(&sub).await.expect("has docs"));
    let none = s.load_docs(&key("nobody"), &["d2"]).await.expect("load");
    assert!(none.is_empty());
    db.finish().await;
}

#[tokio::test]
async fn stale_commits_land_nothing() {
    let Some(db) = fresh_store(module_path!()).await else {
        return;
    };
    let s = &db.store;
    let k = key("rebuilt");
    s.prepare_projection(&k).await.expect("prepare");
    let old = s.progress(&k).await.expect("progress").doc_set;
    assert!(old.is_some(), "a projection has a set");
    s.drop_projection(&k).await.expect("drop");
    let e = s
        .commit_page(&k, &puts("d", 5, 9))
        .await
        .expect_err("dropped");
    assert!(matches!(e, StoreError::Conflict { .. }), "{e}");
    s.prepare_projection(&k).await.expect("prepare again");
    let new = s.progress(&k).await.expect("progress").doc_set;
    assert_ne!(old, new, "a new set each time");
    let stale = PageCommit {
        doc_set: old,
        ..puts("d", 3, 7)
    };
    let e = s.commit_page(&k, &stale).await.expect_err("stale set");
    assert!(matches!(e, StoreError::Conflict { .. }), "{e}");
    assert_eq!(count(s, "SELECT COUNT(*) FROM documents").await, 0);
    assert_eq!(s.progress(&k).await.expect("progress").position, 0);
    let current = PageCommit {
        doc_set: new,
        ..puts("d", 3, 7)
    };
    s.commit_page(&k, &current).await.expect("current");
    // A page from before the position (a replaced agent's) moves nothing back.
    let e = s
        .commit_page(&k, &puts("e", 2, 5))
        .await
        .expect_err("behind");
    assert!(matches!(e, StoreError::Conflict { .. }), "{e}");
    assert_eq!(s.get_doc(&k, "e0").await.expect("get"), None);
    assert_eq!(s.progress(&k).await.expect("progress").position, 7);
    // A subscription keeps no documents: a page with writes for it is refused.
    let sub = key("mailer");
    s.prepare_subscription(&sub).await.expect("subscription");
    let e = s
        .commit_page(&sub, &puts("d", 1, 1))
        .await
        .expect_err("no set");
    assert!(
        e.to_string().contains("mailer@v1 keeps no documents"),
        "{e}"
    );
    s.commit_page(&sub, &puts("d", 0, 3))
        .await
        .expect("progress alone");
    assert_eq!(s.progress(&sub).await.expect("progress").position, 3);
    db.finish().await;
}

#[tokio::test]
async fn dead_letters_are_recorded_and_replayed_ones_removed_with_the_page() {
    let Some(db) = fresh_store(module_path!()).await else {
        return;
    };
    let s = &db.store;
    let k = key("ledger");
    s.prepare_projection(&k).await.expect("prepare");
    for (seq, position) in [(3, 3), (5, 5)] {
        let page = PageCommit {
            dead_letter: Some(DeadLetter {
                sequence: seq,
                error: format!("failed at {seq}"),
            }),
            ..puts("d", 1, position)
        };
        s.commit_page(&k, &page).await.expect("dead letter");
    }
    let letters = "SELECT COUNT(*) FROM dead_letters WHERE name = 'ledger'";
    assert_eq!(count(s, letters).await, 2);
    let replay = PageCommit {
        replayed: vec![3, 4],
        ..puts("d", 1, 5)
    };
    s.commit_page(&k, &replay).await.expect("replay");
    let left: Vec<i64> = sqlx::query_scalar("SELECT sequence FROM dead_letters")
        .fetch_all(s.pool())
        .await
        .expect("letters");
    assert_eq!(left, [5]);
    db.finish().await;
}

#[tokio::test]
async fn documents_read_back_byte_for_byte_whatever_json_the_guest_wrote() {
    let Some(db) = fresh_store(module_path!()).await else {
        return;
    };
    let s = &db.store;
    let k = key("texts");
    s.prepare_projection(&k).await.expect("prepare");
    // JSON a guest may write that jsonb would refuse (a NUL escape, a number past
    // numeric's range, a lone surrogate) or respell (key order, spacing), and one
    // that jsonb's text would blow up from 10 bytes to 131,074.
    let bodies = [
        r#"{"s":"a\u0000b"}"#,
        "[1e999999]",
        r#"{"s":"\ud800"}"#,
        r#"{"z":1,  "a":[2,3]}"#,
        "[1e131071]",
    ];
    let mut page = puts("d", 0, 4);
    for (i, body) in bodies.iter().enumerate() {
        page.writes.push(DocWrite::Put {
            id: format!("doc{i}"),
            body: (*body).into(),
        });
    }
    s.commit_page(&k, &page)
        .await
        .expect("every valid JSON is stored");
    for (i, body) in bodies.iter().enumerate() {
        let id = format!("doc{i}");
        let got = s.get_doc(&k, &id).await.expect("get");
        assert_eq!(got.as_deref(), Some(*body), "{id} reads back as written");
    }
    let ids: Vec<String> = (0..bodies.len()).map(|i| format!("doc{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let all: usize = bodies.iter().map(|b| b.len()).sum();
    let loaded = s
        .load_docs_within(&k, &ids, all)
        .await
        .expect("load")
        .expect("within the written bytes");
    assert_eq!(loaded.values().map(String::len).sum::<usize>(), all);
    db.finish().await;
}

#[tokio::test]
async fn a_page_of_thousands_of_documents_and_megabytes_commits_in_batches() {
    let Some(db) = fresh_store(module_path!()).await else {
        return;
    };
    let s = &db.store;
    let k = key("wide");
    s.prepare_projection(&k).await.expect("prepare");
    let mut page = puts("d", 5_000, 2);
    // Past one statement's bytes too: three documents of 3 MiB.
    for i in 0..3 {
        page.writes.push(DocWrite::Put {
            id: format!("big{i}"),
            body: format!("\"{}\"", "x".repeat(3 << 20)),
        });
    }
    s.commit_page(&k, &page).await.expect("commit");
    assert_eq!(count(s, "SELECT COUNT(*) FROM documents").await, 5_003);
    let sizes = "SELECT SUM(size)::bigint FROM documents WHERE id LIKE 'big%'";
    assert_eq!(count(s, sizes).await, 3 * ((3 << 20) + 2));
    assert_eq!(
        json(s.get_doc(&k, "d4999").await.expect("get")),
        Some(serde_json::json!({"i": 4999}))
    );
    db.finish().await;
}

#[tokio::test]
async fn documents_are_listed_in_byte_order_by_prefix_and_field_within_budgets() {
    let Some(db) = fresh_store(module_path!()).await else {
        return;
    };
    crate::store::doc_list_tests::listing_contract(&db.store).await;
    db.finish().await;
}
