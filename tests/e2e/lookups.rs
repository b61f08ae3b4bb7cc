//! Custom grouping with lookups (issue 14): `group-lookup` routes a `UserRenamed` to
//! every group the user's own document lists, read while slicing through WIT
//! 1.2.0's `host.lookup`. Deployed as a component and fed over HTTP (the joins
//! caught up before the renames, so every rename's lookup sees them), its documents
//! equal the SDK's native fold; a consistent read looks up as the agent does.

use std::time::Duration;

use refract_guest::DocRef;
use refract_guest::testing::project_all_in_pages;
use serde_json::{Value, json};

use crate::common::Daemon;
use crate::multi_stream::{append_all, listed_with};

/// `users` users, each joining `per_user` of `groups` groups.
fn joins(
    users: usize,
    groups: usize,
    per_user: usize,
) -> Vec<(String, String, Value, Option<String>)> {
    (0..users)
        .flat_map(|u| {
            (0..per_user).map(move |k| {
                let group = format!("g{}", (u * 7 + k * 3) % groups);
                let data =
                    json!({"user": format!("u{u}"), "group": group, "name": format!("User {u}")});
                (format!("member-u{u}"), "UserJoined".to_owned(), data, None)
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renames_reach_every_group_of_the_user_by_lookup_and_equal_the_native_fold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), Some("page_size = 50\n"));
    daemon.deploy(refract_test_artifacts::GROUP_LOOKUP).await;
    let (mut events, head) = append_all(&daemon, joins(60, 25, 4)).await;
    daemon
        .wait_caught_up("group-lookup", 1, head, Duration::from_secs(60))
        .await;
    let renames: Vec<_> = (0..60)
        .step_by(2)
        .map(|u| {
            let data = json!({"user": format!("u{u}"), "name": format!("Renamed {u}")});
            (format!("rename-u{u}"), "UserRenamed".to_owned(), data, None)
        })
        .collect();
    let (more, head) = append_all(&daemon, renames).await;
    events.extend(more);
    // A consistent read of a group now: the renames applied through the guest,
    // looked up as the agent looks up.
    let (code, g) = daemon
        .get("/projections/group-lookup/docs/group/g0?consistent=true")
        .await;
    assert_eq!(code, 200, "{g}");
    daemon
        .wait_caught_up("group-lookup", 1, head, Duration::from_secs(60))
        .await;
    // Every rename's lookup saw every join (they were caught up first): as the
    // native fold with a page an event.
    let native = project_all_in_pages::<group_lookup::GroupLookup>(&events, 1).expect("fold");
    for collection in ["user", "group"] {
        let want: std::collections::BTreeMap<String, Value> = native
            .iter()
            .filter(|(d, _)| d.collection() == Some(collection))
            .map(|(d, v)| (d.id.clone(), v.clone()))
            .collect();
        let got = listed_with(
            &daemon,
            "group-lookup",
            &format!("collection={collection}&limit=7"),
        )
        .await;
        assert_eq!(got, want, "{collection}");
    }
    let g0 = &native[&DocRef::in_collection("group", "g0")];
    assert_eq!(&g, g0, "the consistent read equals the fold");
    let renamed = g0["members"]
        .as_object()
        .expect("members")
        .values()
        .filter(|n| n.as_str().is_some_and(|n| n.starts_with("Renamed")))
        .count();
    assert!(renamed > 0, "some member of g0 was renamed: {g0}");
}
