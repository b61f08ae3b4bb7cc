//! Document sets on a real database file: a dropped version's documents vanish at
//! once and are purged in batches, a stale commit lands nothing, a shadow's set
//! moves in whole, and a store of the old layout (a table per version) is adopted.

use super::tests::store;
use std::time::Duration;

use super::*;
use crate::store::shadow::ShadowStore;
use crate::store::{ComponentRecord, DocWrite, DocumentStore, PageCommit, Position, ProjectionKey};

fn key(name: &str) -> ProjectionKey {
    ProjectionKey {
        name: name.into(),
        version: 1,
    }
}

fn puts(prefix: &str, n: usize, position: Position) -> PageCommit {
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

async fn count(s: &SqliteStore, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(s.reader())
        .await
        .expect("count")
}

/// Waits (up to 20 s) until no dropped set is left, then says how many documents remain.
async fn purged(s: &SqliteStore) -> i64 {
    for _ in 0..400 {
        if count(s, "SELECT COUNT(*) FROM doc_sets WHERE dropped = 1").await == 0 {
            return count(s, "SELECT COUNT(*) FROM documents").await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("dropped sets were not purged");
}

#[tokio::test]
async fn a_dropped_version_shows_nothing_at_once_and_is_purged_past_one_batch() {
    let (_dir, s) = store().await;
    let (k, other) = (key("big"), key("other"));
    s.prepare_projection(&k).await.expect("prepare");
    s.prepare_projection(&other).await.expect("prepare other");
    // More documents than one purge batch holds.
    let n = (doc_sets::PURGE_BATCH as usize) * 2 + 7;
    s.commit_page(&k, &puts("d", n, 1)).await.expect("commit");
    s.commit_page(&other, &puts("d", 3, 1))
        .await
        .expect("commit other");
    s.drop_projection(&k).await.expect("drop");
    assert_eq!(s.get_doc(&k, "d0").await.expect("get"), None);
    // The same key deployed again starts empty, even before the purge ends.
    s.prepare_projection(&k).await.expect("prepare again");
    assert!(!s.has_docs(&k).await.expect("has docs"));
    assert_eq!(s.load_docs(&k, &["d1", "d2"]).await.expect("load").len(), 0);
    assert_eq!(
        purged(&s).await,
        3,
        "only the other version's documents stay"
    );
    assert_eq!(
        s.get_doc(&other, "d2").await.expect("get other").as_deref(),
        Some("{\"i\":2}")
    );
}

#[tokio::test]
async fn a_commit_for_a_version_dropped_under_it_lands_nothing() {
    let (_dir, s) = store().await;
    let k = key("stale");
    s.prepare_projection(&k).await.expect("prepare");
    s.drop_projection(&k).await.expect("drop");
    let e = s
        .commit_page(&k, &puts("d", 5, 9))
        .await
        .expect_err("dropped");
    assert!(matches!(e, StoreError::Conflict { .. }), "{e}");
    assert_eq!(count(&s, "SELECT COUNT(*) FROM documents").await, 0);
    // A subscription keeps no documents: a page with writes for it is refused.
    s.prepare_subscription(&k).await.expect("as a subscription");
    let e = s
        .commit_page(&k, &puts("d", 1, 1))
        .await
        .expect_err("no set");
    assert!(e.to_string().contains("stale@v1 keeps no documents"), "{e}");
    assert_eq!(s.progress(&k).await.expect("progress").position, 0);
}

#[tokio::test]
async fn swapping_a_shadow_in_brings_its_documents_and_purges_the_old() {
    let (_dir, s) = store().await;
    let real = key("orders");
    let shadow = real.shadow();
    s.prepare_projection(&real).await.expect("prepare");
    s.prepare_projection(&shadow).await.expect("prepare shadow");
    s.commit_page(&real, &puts("old", 4, 2)).await.expect("old");
    s.commit_page(&shadow, &puts("new", 2, 2))
        .await
        .expect("new");
    let rec = ComponentRecord {
        key: real.clone(),
        team: "default".into(),
        sha256: "ab".into(),
        event_types: vec!["T".into()],
        state: "live".into(),
        deployed_at: 1,
        auto_promote: false,
        kind: "projection".into(),
    };
    crate::store::Registry::save_component(&s, &rec)
        .await
        .expect("register");
    s.swap_shadow(&rec).await.expect("swap");
    assert_eq!(s.get_doc(&real, "old0").await.expect("get"), None);
    assert!(s.get_doc(&real, "new1").await.expect("get").is_some());
    assert_eq!(purged(&s).await, 2);
}

#[tokio::test]
async fn tables_of_the_old_layout_are_adopted_when_the_store_opens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.db");
    let (k, sub) = (key("legacy"), key("mailer"));
    {
        let s = SqliteStore::open(&path).await.expect("open");
        // What an older refract left: progress rows without a set, a table per
        // projection version (none for the subscription).
        s.prepare_subscription(&k).await.expect("progress");
        s.prepare_subscription(&sub).await.expect("progress");
        for sql in [
            "CREATE TABLE \"doc_legacy_v1\" (id TEXT PRIMARY KEY, body TEXT NOT NULL, \
             updated_seq INTEGER NOT NULL) WITHOUT ROWID",
            "INSERT INTO \"doc_legacy_v1\" VALUES ('a', '{\"n\":1}', 1), ('b', '{\"n\":2}', 2)",
        ] {
            sqlx::query(sql).execute(s.writer()).await.expect("legacy");
        }
        s.close().await;
    }
    let s = SqliteStore::open(&path).await.expect("reopen");
    assert_eq!(
        s.get_doc(&k, "b").await.expect("get").as_deref(),
        Some("{\"n\":2}")
    );
    assert!(s.has_doc_table(&k).await.expect("set?"));
    assert!(!s.has_doc_table(&sub).await.expect("set?"));
    let left = "SELECT COUNT(*) FROM sqlite_master WHERE name = 'doc_legacy_v1'";
    assert_eq!(count(&s, left).await, 0, "the old table is gone");
    s.commit_page(&k, &puts("c", 1, 3)).await.expect("commit");
    assert_eq!(count(&s, "SELECT COUNT(*) FROM documents").await, 3);
}

#[tokio::test]
async fn a_budgeted_load_reads_nothing_past_its_bytes() {
    let (_dir, s) = store().await;
    let k = key("sized");
    s.prepare_projection(&k).await.expect("prepare");
    // 1,000 documents of 7 bytes ({"i":0} .. {"i":9}) and 8 bytes, over two id chunks.
    s.commit_page(&k, &puts("d", 1_000, 1))
        .await
        .expect("commit");
    let ids: Vec<String> = (0..1_000).map(|i| format!("d{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let bytes = 10 * 7 + 90 * 8 + 900 * 9;
    let all = s.load_docs_within(&k, &refs, bytes).await.expect("load");
    assert_eq!(all.map(|d| d.len()), Some(1_000));
    let over = s
        .load_docs_within(&k, &refs, bytes - 1)
        .await
        .expect("load");
    assert!(over.is_none(), "one byte past the budget reads nothing");
    // Missing documents cost nothing.
    let some = s
        .load_docs_within(&k, &["d1", "nope"], 7)
        .await
        .expect("load");
    assert_eq!(some.map(|d| d.len()), Some(1));
}

#[tokio::test]
async fn a_commit_from_before_a_drop_and_prepare_lands_nothing_in_the_new_set() {
    let (_dir, s) = store().await;
    let k = key("rebuilt");
    s.prepare_projection(&k).await.expect("prepare");
    let old = s.progress(&k).await.expect("progress").doc_set;
    assert!(old.is_some(), "a projection has a set");
    s.drop_projection(&k).await.expect("drop");
    s.prepare_projection(&k).await.expect("prepare again");
    let new = s.progress(&k).await.expect("progress").doc_set;
    assert_ne!(old, new, "a new set each time");
    let stale = PageCommit {
        doc_set: old,
        ..puts("d", 3, 7)
    };
    let e = s.commit_page(&k, &stale).await.expect_err("stale");
    assert!(matches!(e, StoreError::Conflict { .. }), "{e}");
    assert_eq!(count(&s, "SELECT COUNT(*) FROM documents").await, 0);
    assert_eq!(s.progress(&k).await.expect("progress").position, 0);
    let current = PageCommit {
        doc_set: new,
        ..puts("d", 3, 7)
    };
    s.commit_page(&k, &current).await.expect("current");
    assert_eq!(s.progress(&k).await.expect("progress").position, 7);
}

#[test]
fn a_purge_batch_ends_at_its_bytes_and_takes_at_least_one_document() {
    let sizes = |s: &[i64]| -> Vec<(String, i64)> {
        s.iter()
            .enumerate()
            .map(|(i, n)| (format!("d{i}"), *n))
            .collect()
    };
    let mib = 1 << 20;
    let end = |s: &[i64]| doc_sets::batch_end(&sizes(s), 8 * mib).map(str::to_owned);
    assert_eq!(end(&[]), None);
    assert_eq!(
        end(&[20 * mib, 1]).as_deref(),
        Some("d0"),
        "a big one alone"
    );
    assert_eq!(
        end(&[3 * mib, 5 * mib, 1]).as_deref(),
        Some("d1"),
        "exactly the bytes"
    );
    assert_eq!(
        end(&[1, 2, 3]).as_deref(),
        Some("d2"),
        "all of a small batch"
    );
}
