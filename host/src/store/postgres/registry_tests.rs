//! The registry's lookups return exactly what they select, in key order, and use
//! an index; state changes commit together.

use super::test_db::fresh_store;
use crate::store::{ComponentRecord, Components, ProjectionKey, Registry};

fn rec(name: &str, version: u32, team: &str, sha256: &str) -> ComponentRecord {
    ComponentRecord {
        key: ProjectionKey {
            name: name.into(),
            version,
        },
        team: team.into(),
        sha256: sha256.into(),
        event_types: vec!["T".into()],
        state: "live".into(),
        deployed_at: 1,
        auto_promote: false,
        kind: "projection".into(),
    }
}

fn keys(recs: Vec<ComponentRecord>) -> Vec<String> {
    recs.into_iter().map(|r| r.key.to_string()).collect()
}

fn key(name: &str, version: u32) -> ProjectionKey {
    ProjectionKey {
        name: name.into(),
        version,
    }
}

#[tokio::test]
async fn each_lookup_returns_exactly_its_selection() {
    let Some(db) = fresh_store("registry lookups").await else {
        return;
    };
    let s = &db.store;
    for r in [
        rec("ops.details", 3, "ops", "cc"),
        rec("counter", 2, "default", "bb"),
        rec("counter", 10, "default", "dd"),
        rec("ops.counter", 1, "ops", "aa"),
        rec("counter", 1, "default", "aa"),
        rec("Zeta", 1, "default", "ee"),
    ] {
        s.save_component(&r).await.expect("save");
    }
    let all = s.components().await.expect("all");
    assert_eq!(
        keys(all),
        [
            "Zeta@v1",
            "counter@v1",
            "counter@v2",
            "counter@v10",
            "ops.counter@v1",
            "ops.details@v3"
        ],
        "byte order of names, then version numbers"
    );
    let one = s.component(&key("ops.counter", 1)).await.expect("one");
    assert_eq!(
        one.map(|r| (r.team, r.sha256)),
        Some(("ops".into(), "aa".into()))
    );
    assert!(
        s.component(&key("ops.counter", 2))
            .await
            .expect("none")
            .is_none()
    );
    let named = s.components_where(Components::Name("counter")).await;
    assert_eq!(
        keys(named.expect("name")),
        ["counter@v1", "counter@v2", "counter@v10"]
    );
    let team = s.components_where(Components::Team("ops")).await;
    assert_eq!(
        keys(team.expect("team")),
        ["ops.counter@v1", "ops.details@v3"]
    );
    let code = s.components_where(Components::Code("aa")).await;
    assert_eq!(keys(code.expect("code")), ["counter@v1", "ops.counter@v1"]);
    assert!(
        s.components_where(Components::Team("nobody"))
            .await
            .expect("empty")
            .is_empty()
    );
    db.finish().await;
}

#[tokio::test]
async fn a_saved_record_reads_back_whole_and_a_second_save_replaces_it() {
    let Some(db) = fresh_store("registry save").await else {
        return;
    };
    let s = &db.store;
    let mut r = rec("mailer", 4, "ops", "ab");
    r.event_types = vec!["OrderPlaced".into(), "Order \"shipped\"".into()];
    r.auto_promote = true;
    r.kind = "subscription".into();
    r.deployed_at = 1_700_000_000_000_000;
    s.save_component(&r).await.expect("save");
    let back = s.component(&r.key).await.expect("read").expect("saved");
    assert_eq!(back, r);
    r.state = "standby".into();
    r.auto_promote = false;
    r.event_types.clear();
    s.save_component(&r).await.expect("save again");
    assert_eq!(s.components().await.expect("all"), [r]);
    db.finish().await;
}

#[tokio::test]
async fn state_changes_commit_together_or_not_at_all() {
    let Some(db) = fresh_store("registry states").await else {
        return;
    };
    let s = &db.store;
    for r in [
        rec("a", 1, "t", "x"),
        rec("a", 2, "t", "y"),
        rec("b", 1, "t", "z"),
    ] {
        s.save_component(&r).await.expect("save");
    }
    s.set_states(&[
        (key("a", 1), "retired"),
        (key("a", 2), "live"),
        (key("c", 9), "live"),
    ])
    .await
    .expect("states");
    let states = |recs: Vec<ComponentRecord>| -> Vec<String> {
        recs.into_iter()
            .map(|r| format!("{}={}", r.key, r.state))
            .collect()
    };
    assert_eq!(
        states(s.components().await.expect("all")),
        ["a@v1=retired", "a@v2=live", "b@v1=live"]
    );
    // PostgreSQL refuses a NUL in text: the second change fails, so the first is
    // rolled back with it.
    let err = s
        .set_states(&[(key("b", 1), "standby"), (key("a", 2), "bad\0state")])
        .await;
    assert!(err.is_err(), "a NUL in a state is refused");
    assert_eq!(
        states(s.components().await.expect("all")),
        ["a@v1=retired", "a@v2=live", "b@v1=live"]
    );
    db.finish().await;
}

#[tokio::test]
async fn lookups_by_team_and_code_use_an_index() {
    let Some(db) = fresh_store("registry indexes").await else {
        return;
    };
    let mut conn = db.store.pool().acquire().await.expect("conn");
    // On a tiny table a scan is cheapest: forbid it to see which index serves.
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut *conn)
        .await
        .expect("set");
    for (column, index) in [
        ("team", "components_by_team"),
        ("sha256", "components_by_code"),
    ] {
        let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "EXPLAIN SELECT name FROM components WHERE {column} = 'x'"
        )))
        .fetch_all(&mut *conn)
        .await
        .expect("plan");
        assert!(
            plan.iter().any(|line| line.contains(index)),
            "{column} lookup plan: {plan:?}"
        );
    }
    drop(conn);
    db.finish().await;
}
