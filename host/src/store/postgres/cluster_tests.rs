//! Leases on a real PostgreSQL database (where `REFRACT_TEST_DATABASE_URL` names a
//! server), with two stores standing for two nodes: a lease is held by one node,
//! a node that lost it (taken over, revoked or expired) commits nothing, a node id
//! is one process's, and an outbox message claimed by a live node is left to it.

use std::time::Duration;

use super::PgStore;
use super::docs_tests::{count, key, puts};
use super::subscription_tests::message;
use super::test_db::{fresh_store, start};
use crate::store::cluster::ClusterStore;
use crate::store::subscription::{HandledPage, SubscriptionStore};
use crate::store::{DocumentStore, Store, StoreError, now_micros};

const TTL: Duration = Duration::from_secs(1);

fn lost<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::LeaseLost(_)))
}

#[tokio::test]
async fn a_node_that_was_taken_over_commits_nothing_and_learns_it_lost() {
    let Some(db) = fresh_store(module_path!()).await else {
        return;
    };
    let a = &db.store;
    let b = PgStore::open(&db.url).await.expect("second node");
    a.join("a", None, TTL * 10, true, false)
        .await
        .expect("join a");
    b.join("b", None, TTL * 10, true, false)
        .await
        .expect("join b");
    let k = key("orders");
    a.prepare_projection(&k).await.expect("prepare");
    assert!(
        lost(b.commit_page(&k, &puts("d", 1, 1)).await),
        "no lease, no commit"
    );
    assert!(a.claim(&k, false).await.expect("claim"));
    assert!(!b.claim(&k, false).await.expect("held elsewhere"));
    a.commit_page(&k, &puts("d", 1, 1))
        .await
        .expect("holder commits");
    assert!(b.claim(&k, true).await.expect("take over"));
    assert!(lost(a.commit_page(&k, &puts("d", 1, 2)).await));
    assert_eq!(a.renew().await.expect("renew"), vec![k.clone()]);
    assert!(!a.holds(&k));
    b.commit_page(&k, &puts("d", 1, 2))
        .await
        .expect("new holder commits");
    // Revoked (a lifecycle change through a third node): nobody commits.
    let c = PgStore::open(&db.url).await.expect("third node");
    c.join("c", None, TTL * 10, false, false)
        .await
        .expect("join c");
    c.revoke(&k).await.expect("revoke");
    assert!(lost(b.commit_page(&k, &puts("d", 1, 3)).await));
    let audited = count(
        a,
        "SELECT COUNT(DISTINCT (node_id, token)) FROM lease_commits WHERE position IN (1, 2)",
    )
    .await;
    assert_eq!(audited, 2, "each commit with its node and token");
    assert_eq!(a.progress(&k).await.expect("progress").position, 2);
    b.close().await;
    c.close().await;
    db.finish().await;
}

#[tokio::test]
async fn an_expired_lease_fences_its_holder_before_anyone_takes_it() {
    let Some(db) = fresh_store(module_path!()).await else {
        return;
    };
    let a = &db.store;
    let b = PgStore::open(&db.url).await.expect("second node");
    a.join("a", None, TTL, false, false).await.expect("join a");
    b.join("b", None, TTL, false, false).await.expect("join b");
    let k = key("orders");
    a.prepare_projection(&k).await.expect("prepare");
    assert!(a.claim(&k, false).await.expect("claim"));
    // A paused node: no renewal. The database's clock decides, not the node's.
    tokio::time::sleep(TTL + Duration::from_millis(300)).await;
    assert!(lost(a.commit_page(&k, &puts("d", 1, 1)).await));
    assert!(b.claim(&k, false).await.expect("an expired lease is free"));
    let leases = b.leases().await.expect("leases");
    assert_eq!(leases.len(), 1);
    assert_eq!(leases[0].node_id, "b");
    let nodes = b.heartbeat().await.expect("heartbeat");
    let alive: Vec<_> = nodes
        .iter()
        .filter(|n| n.alive)
        .map(|n| &n.node_id)
        .collect();
    assert_eq!(alive, ["b"], "a stopped beating: {nodes:?}");
    b.close().await;
    db.finish().await;
}

#[tokio::test]
async fn a_live_node_id_is_one_process_and_a_dead_ones_leases_go_with_it() {
    let Some(db) = fresh_store(module_path!()).await else {
        return;
    };
    let a = &db.store;
    a.join("n1", None, TTL, false, false).await.expect("join");
    let k = key("orders");
    assert!(a.claim(&k, false).await.expect("claim"));
    let twin = PgStore::open(&db.url).await.expect("twin");
    let refused = twin.join("n1", None, TTL, false, false).await;
    assert!(
        matches!(&refused, Err(StoreError::Invalid(m)) if m.contains("in use")),
        "{refused:?}"
    );
    // A process that knows it is the only one under that id (its data
    // directory's lock) takes it at once, and what the one before held goes.
    let sole = PgStore::open(&db.url).await.expect("sole");
    sole.join("n1", None, TTL, false, true)
        .await
        .expect("sole join");
    assert!(sole.leases().await.expect("leases").is_empty());
    sole.close().await;
    // The first process dies (no heartbeat): its id may be used again, and what
    // it held is free at once.
    tokio::time::sleep(TTL + Duration::from_millis(300)).await;
    let again = PgStore::open(&db.url).await.expect("restarted");
    again
        .join("n1", None, TTL, false, false)
        .await
        .expect("join again");
    assert!(again.leases().await.expect("leases").is_empty());
    twin.close().await;
    again.close().await;
    db.finish().await;
}

#[tokio::test]
async fn an_outbox_message_claimed_by_a_live_node_is_left_to_it() {
    let Some(db) = fresh_store(module_path!()).await else {
        return;
    };
    let a = &db.store;
    let b = PgStore::open(&db.url).await.expect("second node");
    a.join("a", None, TTL, false, false).await.expect("join a");
    b.join("b", None, TTL, false, false).await.expect("join b");
    let k = key("mailer");
    start(a, &k).await;
    assert!(a.claim(&k, false).await.expect("claim"));
    let page = HandledPage {
        messages: vec![message("m1"), message("m2")],
        position: 1,
        ..HandledPage::default()
    };
    a.commit_handled(&k, "team", &page).await.expect("commit");
    let mine = a
        .due_team_messages("team", now_micros(), 1)
        .await
        .expect("a");
    assert_eq!(mine.len(), 1);
    let theirs = b
        .due_team_messages("team", now_micros(), 10)
        .await
        .expect("b");
    assert_eq!(theirs.len(), 1, "only the message a did not claim");
    assert_ne!(theirs[0].id, mine[0].id);
    let again = b
        .due_team_messages("team", now_micros(), 10)
        .await
        .expect("b");
    assert_eq!(
        again.len(),
        1,
        "b's own claim comes back to b (a pass that ended early)"
    );
    // a dies: past its heartbeat's life, b retries what a held.
    tokio::time::sleep(TTL + Duration::from_millis(300)).await;
    b.heartbeat().await.expect("beat");
    let after = b
        .due_team_messages("team", now_micros(), 10)
        .await
        .expect("b");
    assert_eq!(after.len(), 2, "{after:?}");
    b.close().await;
    db.finish().await;
}
