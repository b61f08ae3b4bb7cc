//! Document sets on a real PostgreSQL database (where `REFRACT_TEST_DATABASE_URL`
//! names a server): a dropped version's documents vanish at once and are purged in
//! batches, a shadow's set moves in whole, and prepares, commits and drops running
//! at once leave one set and nothing stale.

use super::doc_sets::PURGE_BATCH;
use super::docs_tests::{count, json, key, purged, puts};
use super::test_db::fresh_store;
use crate::store::shadow::ShadowStore;
use crate::store::subscription::DeadLetter;
use crate::store::{ComponentRecord, DocumentStore, PageCommit, StoreError};

#[tokio::test]
async fn a_dropped_version_shows_nothing_at_once_and_is_purged_past_one_batch() {
    let Some(db) = fresh_store(module_path!()).await else {
        return;
    };
    let s = &db.store;
    let (k, other) = (key("big"), key("other"));
    s.prepare_projection(&k).await.expect("prepare");
    s.prepare_projection(&other).await.expect("prepare other");
    let n = usize::try_from(PURGE_BATCH).expect("batch") * 2 + 7;
    s.commit_page(&k, &puts("d", n, 1)).await.expect("commit");
    s.commit_page(&other, &puts("d", 3, 1))
        .await
        .expect("other");
    s.drop_projection(&k).await.expect("drop");
    assert_eq!(s.get_doc(&k, "d0").await.expect("get"), None);
    assert!(s.progress(&k).await.is_err(), "its progress is gone");
    // The same key deployed again starts empty, even before the purge ends.
    s.prepare_projection(&k).await.expect("prepare again");
    assert!(!s.has_docs(&k).await.expect("has docs"));
    assert!(
        s.load_docs(&k, &["d1", "d2"])
            .await
            .expect("load")
            .is_empty()
    );
    assert_eq!(
        purged(s).await,
        3,
        "only the other version's documents stay"
    );
    assert_eq!(count(s, "SELECT COUNT(*) FROM doc_sets").await, 2);
    assert_eq!(
        json(s.get_doc(&other, "d2").await.expect("get other")),
        Some(serde_json::json!({"i": 2}))
    );
    db.finish().await;
}

#[tokio::test]
async fn swapping_a_shadow_in_brings_its_documents_progress_and_dead_letters() {
    let Some(db) = fresh_store(module_path!()).await else {
        return;
    };
    let s = &db.store;
    let real = key("orders");
    let shadow = real.shadow();
    let rec = ComponentRecord {
        key: real.clone(),
        team: "default".into(),
        sha256: "cd".into(),
        event_types: vec!["T".into()],
        state: "live".into(),
        deployed_at: 2,
        auto_promote: false,
        kind: "projection".into(),
    };
    s.prepare_projection(&real).await.expect("prepare");
    let e = s.swap_shadow(&rec).await.expect_err("no shadow");
    assert!(matches!(e, StoreError::NotFound(_)), "{e}");
    s.prepare_projection(&shadow).await.expect("prepare shadow");
    s.commit_page(&real, &puts("old", 4, 2)).await.expect("old");
    let mut new = puts("new", 2, 9);
    new.dead_letter = Some(DeadLetter {
        sequence: 8,
        error: "bad\0event".into(),
    });
    s.commit_page(&shadow, &new).await.expect("new");
    let e = s.swap_shadow(&rec).await.expect_err("not registered");
    assert!(matches!(e, StoreError::NotFound(_)), "{e}");
    assert!(
        s.get_doc(&real, "old0").await.expect("get").is_some(),
        "rolled back"
    );
    sqlx::query(
        "INSERT INTO components (name, version, team, sha256, event_types, state, deployed_at) \
         VALUES ('orders', 1, 'default', 'ab', '[\"T\"]', 'live', 1)",
    )
    .execute(s.pool())
    .await
    .expect("register");
    s.swap_shadow(&rec).await.expect("swap");
    assert_eq!(s.get_doc(&real, "old0").await.expect("get"), None);
    assert!(s.get_doc(&real, "new1").await.expect("get").is_some());
    assert_eq!(s.progress(&real).await.expect("progress").position, 9);
    assert!(s.progress(&shadow).await.is_err(), "the shadow is gone");
    let letters = "SELECT COUNT(*) FROM dead_letters WHERE name = 'orders' AND error = 'badevent'";
    assert_eq!(count(s, letters).await, 1);
    let code = "SELECT COUNT(*) FROM components WHERE sha256 = 'cd' AND deployed_at = 2";
    assert_eq!(count(s, code).await, 1);
    assert_eq!(purged(s).await, 2);
    // A shadow's agent still running commits nothing any more.
    let e = s
        .commit_page(&shadow, &puts("late", 1, 10))
        .await
        .expect_err("gone");
    assert!(matches!(e, StoreError::Conflict { .. }), "{e}");
    db.finish().await;
}

#[tokio::test]
async fn prepares_at_once_make_one_set_and_a_commit_racing_a_drop_leaves_nothing() {
    let Some(db) = fresh_store(module_path!()).await else {
        return;
    };
    let s = &db.store;
    let k = key("raced");
    let prepares: Vec<_> = (0..8)
        .map(|_| {
            let (s, k) = (s.clone(), k.clone());
            tokio::spawn(async move { s.prepare_projection(&k).await })
        })
        .collect();
    for p in prepares {
        p.await.expect("task").expect("prepare");
    }
    assert_eq!(count(s, "SELECT COUNT(*) FROM doc_sets").await, 1);
    for round in 1..=20 {
        let set = s.progress(&k).await.expect("progress").doc_set;
        let page = PageCommit {
            doc_set: set,
            ..puts("d", 50, round)
        };
        let (committed, dropped) = tokio::join!(s.commit_page(&k, &page), s.drop_projection(&k));
        dropped.expect("drop");
        if let Err(e) = committed {
            assert!(matches!(e, StoreError::Conflict { .. }), "{e}");
        }
        assert!(!s.has_docs(&k).await.expect("has docs"), "round {round}");
        s.prepare_projection(&k).await.expect("prepare again");
    }
    assert_eq!(purged(s).await, 0, "whatever landed was purged");
    db.finish().await;
}
