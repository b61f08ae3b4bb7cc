//! Lifecycle calls through a node that does not run the version (issue 15): a
//! pause made through one node holds on every node (and across a take-over), a
//! resume through another runs it again, a stream's rebuild and a team's view of
//! the cluster answer from any node. Runs only where `REFRACT_TEST_DATABASE_URL`
//! names a server.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use stream_counter::StreamCounter;

use crate::cluster::{Cluster, call, native_events};
use crate::common::{Daemon, backend};

const NAME: &str = "t0.stream-counter";

/// The node holding `NAME`'s lease, as `d` sees it.
async fn holder(d: &Daemon) -> String {
    let (code, list) = call(d, Method::GET, "/projections", None).await;
    assert_eq!(code, 200, "{list}");
    let p = status(&list);
    p["node"].as_str().unwrap_or_default().to_owned()
}

fn status(list: &Value) -> Value {
    list.as_array()
        .and_then(|all| all.iter().find(|p| p["name"] == NAME))
        .cloned()
        .unwrap_or(Value::Null)
}

async fn append(d: &Daemon, stream: &str, n: usize) -> i64 {
    let events: Vec<Value> = (0..n)
        .map(|_| json!({"type": "IncidentLogged", "data": {}}))
        .collect();
    let path = format!("/streams/{stream}/events");
    let (code, out) = call(d, Method::POST, &path, Some(json!({ "events": events }))).await;
    assert_eq!(code, 200, "{out}");
    out["last_sequence"].as_i64().expect("last sequence")
}

/// Waits until `NAME`, seen through `d`, is at `seq` (or past it).
async fn reached(d: &Daemon, seq: i64) -> Value {
    let started = Instant::now();
    loop {
        let (_, list) = call(d, Method::GET, "/projections", None).await;
        let p = status(&list);
        if p["position"].as_i64() >= Some(seq) {
            return p;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not at {seq}: {p}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_resume_and_rebuild_through_any_node_reach_the_version_wherever_it_runs() {
    if !backend::is_postgres() {
        eprintln!("cluster_lifecycle: skipped (REFRACT_TEST_DATABASE_URL is not set)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let store = backend::store_url(&dir.path().join("db")).expect("database");
    let mut cluster = Cluster {
        root: dir.path().to_owned(),
        store,
        nodes: BTreeMap::new(),
        versions: 1,
    };
    cluster.start("n1");
    cluster.start("n2");
    let bytes = std::fs::read(refract_test_artifacts::STREAM_COUNTER).expect("component");
    let n1 = cluster.nodes["n1"].as_ref().expect("n1");
    let (code, out) = n1
        .request_as(Some("t0-token"), Method::POST, "/components", Some(bytes))
        .await;
    assert_eq!(code, 200, "{out}");
    cluster.settled("deployed").await;
    let nodes = |id: &str| cluster.nodes[id].as_ref().expect("node");
    let runs = holder(nodes("n1")).await;
    let (here, other) = match runs.as_str() {
        "n1" => (nodes("n1"), nodes("n2")),
        _ => (nodes("n2"), nodes("n1")),
    };
    let first = append(here, "s-1", 5).await;
    reached(other, first).await;

    // Paused through the node that does not run it: it stops where it is, as
    // every node shows, while events keep coming.
    let path = format!("/projections/{NAME}/versions/1/pause");
    let (code, out) = call(other, Method::POST, &path, Some(json!({}))).await;
    assert_eq!(code, 200, "{out}");
    let during = append(here, "s-1", 5).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for d in [here, other] {
        let (_, list) = call(d, Method::GET, "/projections", None).await;
        let p = status(&list);
        assert_eq!(p["status"], "paused", "{p}");
        assert_eq!(
            p["position"].as_i64(),
            Some(first),
            "paused where it was: {p}"
        );
    }
    // Resumed through the other node: it runs again, wherever, to the end.
    let path = format!("/projections/{NAME}/versions/1/resume");
    let (code, out) = call(here, Method::POST, &path, Some(json!({}))).await;
    assert_eq!(code, 200, "{out}");
    let p = reached(other, during).await;
    assert_eq!(p["status"], "running", "{p}");
    assert_eq!(p["events_applied"], 10, "{p}");

    // A stream's rebuild (answered by the version's agent) through either node.
    for d in [other, here] {
        let path = format!("/projections/{NAME}/versions/1/rebuild?stream=s-1");
        let (code, out) = call(d, Method::POST, &path, None).await;
        assert_eq!(code, 200, "{out}");
        assert_eq!(out["rebuilt"]["stream_events"], 10, "{out}");
    }
    let events = native_events(here, "s-1").await;
    let want = refract_guest::testing::project::<StreamCounter>(&events).expect("native");
    for d in [here, other] {
        let (code, got) = call(
            d,
            Method::GET,
            &format!("/projections/{NAME}/docs/s-1"),
            None,
        )
        .await;
        assert_eq!((code, &got), (200, &want["s-1"]));
    }

    // A team sees the nodes and its own agents only, not where nodes listen or
    // how many versions other teams run.
    let (code, view) = other
        .request_as(Some("t1-token"), Method::GET, "/cluster", None)
        .await;
    assert_eq!(code, 200, "{view}");
    assert_eq!(view["versions"], 0, "{view}");
    assert!(view.get("per_node_max").is_none(), "{view}");
    for n in view["nodes"].as_array().expect("nodes") {
        assert!(n["addr"].is_null(), "{view}");
        assert_eq!(n["agents"], json!([]), "{view}");
    }
    let (_, mine) = other
        .request_as(Some("t0-token"), Method::GET, "/cluster", None)
        .await;
    let agents: Vec<Value> = mine["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .flat_map(|n| n["agents"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(agents, [json!("t0.stream-counter@v1")], "{mine}");
}
