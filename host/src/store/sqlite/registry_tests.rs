//! The registry's lookups return exactly what they select, and use an index.

use super::SqliteStore;
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

#[tokio::test]
async fn each_lookup_returns_exactly_its_selection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = SqliteStore::open(&dir.path().join("t.db"))
        .await
        .expect("open");
    for r in [
        rec("counter", 1, "default", "aa"),
        rec("counter", 2, "default", "bb"),
        rec("ops.counter", 1, "ops", "aa"),
        rec("ops.details", 3, "ops", "cc"),
    ] {
        s.save_component(&r).await.expect("save");
    }
    let key = |name: &str, version| ProjectionKey {
        name: name.into(),
        version,
    };
    let all = s.components().await.expect("all");
    assert_eq!(
        keys(all),
        [
            "counter@v1",
            "counter@v2",
            "ops.counter@v1",
            "ops.details@v3"
        ]
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
    assert_eq!(keys(named.expect("name")), ["counter@v1", "counter@v2"]);
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
}

#[tokio::test]
async fn lookups_by_team_and_code_use_an_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = SqliteStore::open(&dir.path().join("t.db"))
        .await
        .expect("open");
    for (column, index) in [
        ("team", "components_by_team"),
        ("sha256", "components_by_code"),
    ] {
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN SELECT name FROM components WHERE {column} = 'x'"
        )))
        .fetch_all(s.reader())
        .await
        .expect("plan");
        let detail: Vec<&str> = plan.iter().map(|p| p.3.as_str()).collect();
        assert!(
            detail.iter().any(|d| d.contains(index)),
            "{column} lookup plan: {detail:?}"
        );
    }
}
