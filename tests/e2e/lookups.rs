//! Custom grouping with lookups (issue 14): `group-lookup` routes a `UserRenamed` to
//! every group the user's own document lists, read while slicing through WIT
//! 1.2.0's `host.lookup`. Deployed as a component and fed joins and renames
//! interleaved over HTTP, its documents equal the SDK's native fold: a page that
//! looks up a document it also writes is narrowed, so the answer never depends on
//! where pages end. Inline, a rename in the same append as the join sees it. What
//! would route old events by today's documents is refused.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::Daemon;
use crate::multi_stream::{Workload, append_all, listed_with};

/// `users` users joining `groups` groups, a rename of every other user after each
/// of its joins: interleaved, so pages hold joins and the renames that need them.
fn workload(users: usize, groups: usize, per_user: usize) -> Workload {
    let mut out = Vec::new();
    for k in 0..per_user {
        for u in 0..users {
            let group = format!("g{}", (u * 7 + k * 3) % groups);
            let data =
                json!({"user": format!("u{u}"), "group": group, "name": format!("User {u}")});
            out.push((format!("member-u{u}"), "UserJoined".to_owned(), data, None));
            if u % 2 == 0 {
                let data = json!({"user": format!("u{u}"), "name": format!("Renamed {u} {k}")});
                out.push((format!("rename-u{u}"), "UserRenamed".to_owned(), data, None));
            }
        }
    }
    out
}

/// The native fold's documents of one collection, by id.
fn collection(native: &BTreeMap<refract_guest::DocRef, Value>, c: &str) -> BTreeMap<String, Value> {
    native
        .iter()
        .filter(|(d, _)| d.collection() == Some(c))
        .map(|(d, v)| (d.id.clone(), v.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renames_reach_every_group_by_lookup_whatever_the_page_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), Some("page_size = 50\n"));
    daemon.deploy(refract_test_artifacts::GROUP_LOOKUP).await;
    let (events, head) = append_all(&daemon, workload(60, 25, 4)).await;
    daemon
        .wait_caught_up("group-lookup", 1, head, Duration::from_secs(60))
        .await;
    // The native fold in pages of 500 (the daemon's were 50, or fewer live): the
    // same documents, since a page that looks up what it writes is narrowed.
    let native =
        refract_guest::testing::project_all::<group_lookup::GroupLookup>(&events).expect("fold");
    for c in ["user", "group"] {
        let got = listed_with(&daemon, "group-lookup", &format!("collection={c}&limit=7")).await;
        assert_eq!(got, collection(&native, c), "{c}");
    }
    let renamed = collection(&native, "group")
        .values()
        .flat_map(|g| g["members"].as_object().cloned().unwrap_or_default())
        .filter(|(_, n)| n.as_str().is_some_and(|n| n.starts_with("Renamed")))
        .count();
    assert!(renamed > 10, "renames reached groups: {renamed}");

    // What would route old events by today's documents is refused, by name.
    for (method, path) in [
        (
            reqwest::Method::GET,
            "/projections/group-lookup/docs/group/g0?consistent=true",
        ),
        (
            reqwest::Method::POST,
            "/projections/group-lookup/versions/1/rebuild?stream=member-u0",
        ),
        (
            reqwest::Method::POST,
            "/projections/group-lookup/versions/1/dead-letters/replay",
        ),
    ] {
        let (code, body) = daemon.request(method.clone(), path, None).await;
        assert!(code == 409 || code == 422, "{method} {path}: {code} {body}");
        assert!(
            body.to_string().contains("looks its own documents up"),
            "{path}: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_a_rename_in_the_joins_append_sees_them() {
    if crate::common::backend::is_postgres() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config = "[components.group-lookup]\nlifecycle = \"inline\"\n";
    let daemon = Daemon::start(&dir.path().join("data"), Some(config));
    daemon.deploy(refract_test_artifacts::GROUP_LOOKUP).await;
    let events = [
        (
            "UserJoined".to_owned(),
            json!({"user": "u1", "group": "red", "name": "Ann"}),
        ),
        (
            "UserJoined".to_owned(),
            json!({"user": "u1", "group": "blue", "name": "Ann"}),
        ),
        (
            "UserRenamed".to_owned(),
            json!({"user": "u1", "name": "Anna"}),
        ),
    ];
    let (code, out) = daemon.append("u1", Some(0), &events).await;
    assert_eq!(
        (code, &out["inline"][0]["projected"]),
        (200, &json!(true)),
        "{out}"
    );
    for g in ["red", "blue"] {
        let (code, doc) = daemon
            .get(&format!("/projections/group-lookup/docs/group/{g}"))
            .await;
        assert_eq!(
            (code, doc),
            (200, json!({"members": {"u1": "Anna"}})),
            "{g}"
        );
    }
}
