//! Several daemon nodes on one PostgreSQL store (issue 15): 12 versions spread over
//! the nodes, writers appending throughout while nodes are killed (SIGKILL),
//! restarted, added and stopped; at the end every projection equals its native
//! fold, every subscription handled each event once, and no version ever committed
//! from two nodes in overlapping lease periods (from the commits' audit). Runs only
//! where `REFRACT_TEST_DATABASE_URL` names a server.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use incident_details::IncidentDetailsProjection;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::{Connection, Row};
use stream_counter::StreamCounter;

use crate::common::helpdesk::{incidents, sdk_event};
use crate::common::{Daemon, backend};

const TEAMS: [&str; 4] = ["t0", "t1", "t2", "t3"];
const ADMIN: Option<&str> = Some("root-token");
const VERSIONS: usize = 12;

fn config() -> String {
    let mut c = String::from(
        "admin_token = \"root-token\"\n[cluster]\nlease_ttl_ms = 3000\naudit_commits = true\n",
    );
    for t in TEAMS {
        c.push_str(&format!("[teams.{t}]\ntoken = \"{t}-token\"\n"));
        // Each team's subscription echoes its pokes to a stream of its own.
        c.push_str(&format!(
            "[components.\"{t}.emit-probe\"]\nsettings = {{ stream = \"echo-{t}\" }}\n"
        ));
    }
    c
}

/// The nodes of the test's cluster, by id (a dead one is `None`).
pub(crate) struct Cluster {
    pub(crate) root: std::path::PathBuf,
    pub(crate) store: String,
    pub(crate) nodes: BTreeMap<String, Option<Daemon>>,
    /// Versions deployed (every one held by a live node once settled).
    pub(crate) versions: usize,
}

impl Cluster {
    pub(crate) fn start(&mut self, id: &str) {
        let dir = self.root.join(id);
        let d = Daemon::start_node(&dir, &self.store, id, Some(&config()));
        self.nodes.insert(id.to_owned(), Some(d));
    }

    pub(crate) fn alive(&self) -> Vec<&Daemon> {
        self.nodes.values().flatten().collect()
    }

    /// The API addresses of the live nodes.
    fn urls(&self) -> Vec<String> {
        self.alive().iter().map(|d| d.url.clone()).collect()
    }

    pub(crate) fn kill(&mut self, id: &str) {
        let d = self.nodes.insert(id.to_owned(), None).flatten();
        d.expect("running").kill();
    }

    fn stop(&mut self, id: &str) {
        let d = self.nodes.insert(id.to_owned(), None).flatten();
        d.expect("running").sigterm_within(Duration::from_secs(30));
    }

    /// Waits until the live nodes hold every version, none more than its share;
    /// answers how long that took.
    pub(crate) async fn settled(&self, what: &str) -> Duration {
        let started = Instant::now();
        let alive = self.alive();
        let ids: Vec<&String> = self
            .nodes
            .iter()
            .filter(|(_, d)| d.is_some())
            .map(|(k, _)| k)
            .collect();
        let share = self.versions.div_ceil(alive.len());
        loop {
            let (code, view) = call(alive[0], Method::GET, "/cluster", None).await;
            assert_eq!(code, 200, "{view}");
            let mut held = 0;
            let mut fair = true;
            for n in view["nodes"].as_array().expect("nodes") {
                let agents = n["agents"].as_array().map_or(0, Vec::len);
                let id = n["node_id"].as_str().unwrap_or("");
                if ids.iter().any(|i| *i == id) {
                    held += agents;
                    fair &= agents <= share;
                } else {
                    fair &= agents == 0;
                }
            }
            if held == self.versions && fair {
                let took = started.elapsed();
                eprintln!("cluster: {what}: settled in {took:?}: {view}");
                return took;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{what}: not settled: {view}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub(crate) async fn call(
    d: &Daemon,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string().into_bytes());
    d.request_as(ADMIN, method, path, body).await
}

/// Appends through any live node until told to stop: incidents (each event with
/// its expected version and an idempotency key, retried on another node when one
/// dies) and pokes for the subscriptions.
async fn writer(
    w: usize,
    nodes: Arc<std::sync::Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    pokes: Arc<AtomicUsize>,
) -> Vec<String> {
    let http = reqwest::Client::new();
    let mut streams = Vec::new();
    let mut turn = w;
    for (i, (id, events)) in incidents(100 + w as u64).enumerate() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let id = format!("w{w}-{id}");
        for (v, (ty, data)) in events.iter().enumerate() {
            let body = json!({
                "expected_version": v,
                "idempotency_key": format!("{id}-{v}"),
                "events": [{"type": ty, "data": data}],
            });
            append(&http, &nodes, &mut turn, &id, &body).await;
        }
        let poke = json!({
            "idempotency_key": format!("poke-{w}-{i}"),
            "events": [{"type": "Poke", "data": {}}],
        });
        append(&http, &nodes, &mut turn, &format!("pokes-{w}"), &poke).await;
        pokes.fetch_add(1, Ordering::SeqCst);
        streams.push(id);
    }
    streams
}

async fn append(
    http: &reqwest::Client,
    nodes: &std::sync::Mutex<Vec<String>>,
    turn: &mut usize,
    stream: &str,
    body: &Value,
) {
    let started = Instant::now();
    loop {
        let url = {
            let all = nodes.lock().expect("nodes");
            *turn += 1;
            all[*turn % all.len()].clone()
        };
        let sent = http
            .post(format!("{url}/streams/{stream}/events"))
            .bearer_auth("root-token")
            .json(body)
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        let failed = match sent {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => format!("{}: {}", r.status(), r.text().await.unwrap_or_default()),
            // A node killed under the request: the same key on another node.
            Err(e) => e.to_string(),
        };
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{stream}: {failed}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_die_join_and_leave_while_writers_append_and_nothing_is_lost_or_doubled() {
    if !backend::is_postgres() {
        eprintln!("cluster: skipped (REFRACT_TEST_DATABASE_URL is not set)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let store = backend::store_url(&dir.path().join("db")).expect("database");
    let mut cluster = Cluster {
        root: dir.path().to_owned(),
        store: store.clone(),
        nodes: BTreeMap::new(),
        versions: VERSIONS,
    };
    for id in ["n1", "n2", "n3"] {
        cluster.start(id);
    }
    for t in TEAMS {
        let first = cluster.alive()[0];
        let token = format!("{t}-token");
        for wasm in [
            refract_test_artifacts::INCIDENT_DETAILS_V1,
            refract_test_artifacts::STREAM_COUNTER,
            refract_test_artifacts::EMIT_PROBE,
        ] {
            let bytes = std::fs::read(wasm).expect("component");
            let (code, out) = first
                .request_as(Some(&token), Method::POST, "/components", Some(bytes))
                .await;
            assert_eq!(code, 200, "{out}");
        }
    }
    cluster.settled("3 nodes").await;

    let live = Arc::new(std::sync::Mutex::new(cluster.urls()));
    let stop = Arc::new(AtomicBool::new(false));
    let pokes = Arc::new(AtomicUsize::new(0));
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..4 {
        writers.spawn(writer(w, live.clone(), stop.clone(), pokes.clone()));
    }
    let mut takeovers = Vec::new();
    let set_live = |c: &Cluster| *live.lock().expect("nodes") = c.urls();
    for round in 0..2 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        cluster.kill("n2");
        set_live(&cluster);
        takeovers.push(cluster.settled(&format!("n2 killed ({round})")).await);
        cluster.start("n2");
        set_live(&cluster);
        cluster.settled("n2 back").await;
    }
    cluster.start("n4");
    set_live(&cluster);
    cluster.settled("n4 joined").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.stop("n1");
    set_live(&cluster);
    let graceful = cluster.settled("n1 stopped").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let mut streams = Vec::new();
    while let Some(done) = writers.join_next().await {
        streams.extend(done.expect("writer"));
    }
    eprintln!("cluster: takeover after SIGKILL {takeovers:?}, after SIGTERM {graceful:?}");
    for t in &takeovers {
        // Within a lease's life (3 s) and a tick; a hang detector, not a benchmark.
        assert!(*t < Duration::from_secs(15), "takeover took {t:?}");
    }

    let node = cluster.alive()[0];
    let head = caught_up(node).await;
    eprintln!(
        "cluster: {} incidents, {} pokes, head {head}",
        streams.len(),
        pokes.load(Ordering::SeqCst)
    );
    for t in TEAMS {
        check_projections(node, t, &streams).await;
        check_subscription(node, t, pokes.load(Ordering::SeqCst)).await;
    }
    check_audit(&store).await;
}

/// Waits until every version of every team is at the head with nothing paused.
async fn caught_up(d: &Daemon) -> i64 {
    let started = Instant::now();
    loop {
        let (code, list) = call(d, Method::GET, "/projections", None).await;
        assert_eq!(code, 200, "{list}");
        let all = list.as_array().expect("list");
        assert_eq!(all.len(), VERSIONS, "{list}");
        for p in all {
            assert_eq!(p["status"], "running", "{p}");
        }
        if all.iter().all(|p| p["lag"] == 0) {
            return all[0]["head"].as_i64().unwrap_or_default();
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "not caught up: {list}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The stream's events as the SDK's native fold takes them.
pub(crate) async fn native_events(d: &Daemon, stream: &str) -> Vec<refract_guest::Event> {
    let (code, body) = call(d, Method::GET, &format!("/streams/{stream}"), None).await;
    assert_eq!(code, 200, "{stream}: {body}");
    body["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            let seq = e["sequence"].as_i64().expect("sequence");
            let v = e["stream_version"].as_u64().expect("version");
            let ty = e["type"].as_str().expect("type");
            sdk_event(seq, stream, v, ty, &e["data"])
        })
        .collect()
}

async fn check_projections(d: &Daemon, team: &str, streams: &[String]) {
    for id in streams {
        let events = native_events(d, id).await;
        let details = refract_guest::testing::project::<IncidentDetailsProjection>(&events)
            .expect("native incident-details");
        let counts =
            refract_guest::testing::project::<StreamCounter>(&events).expect("native counter");
        for (name, want) in [("incident-details", &details), ("stream-counter", &counts)] {
            let want = want.get(id).expect("a document per stream");
            let path = format!("/projections/{team}.{name}/docs/{id}");
            let (code, got) = call(d, Method::GET, &path, None).await;
            assert_eq!((code, &got), (200, want), "{path}");
        }
    }
}

async fn check_subscription(d: &Daemon, team: &str, pokes: usize) {
    let (_, list) = call(d, Method::GET, "/projections", None).await;
    let name = format!("{team}.emit-probe");
    let p = list
        .as_array()
        .expect("list")
        .iter()
        .find(|p| p["name"] == name.as_str())
        .cloned()
        .expect("the subscription");
    assert_eq!(
        p["events_applied"], pokes as u64,
        "{name} handled each poke once: {p}"
    );
    // Every poke echoed once: as many echoes as pokes, each of another poke.
    let mut echoed = std::collections::BTreeSet::new();
    let mut from = 1;
    loop {
        let path = format!("/streams/echo-{team}?from={from}&limit=1000");
        let (code, page) = call(d, Method::GET, &path, None).await;
        assert_eq!(code, 200, "{path}: {page}");
        for e in page["events"].as_array().expect("events") {
            let seq = e["data"]["sequence"].as_u64().expect("echoed sequence");
            assert!(echoed.insert(seq), "{team}: poke {seq} echoed twice");
        }
        match page["next"].as_u64() {
            Some(next) => from = next,
            None => break,
        }
    }
    assert_eq!(echoed.len(), pokes, "{team}: every poke echoed");
}

/// Every version's commits, from the audit: one node per token, and the tokens'
/// periods (first to last commit) never overlap; positions only grow.
async fn check_audit(store: &str) {
    let mut conn = sqlx::PgConnection::connect(store).await.expect("connect");
    let rows = sqlx::query(
        "SELECT name, version, token, COUNT(DISTINCT node_id), \
         (extract(epoch FROM MIN(committed_at)) * 1000000)::bigint, \
         (extract(epoch FROM MAX(committed_at)) * 1000000)::bigint, \
         MIN(position), MAX(position), COUNT(*) FROM lease_commits \
         GROUP BY name, version, token ORDER BY name, version, MIN(committed_at)",
    )
    .fetch_all(&mut conn)
    .await
    .expect("audit");
    let mut last: HashMap<(String, i64), (i64, i64, i64)> = HashMap::new();
    let mut commits = 0;
    for r in &rows {
        let key: (String, i64) = (r.get(0), r.get(1));
        let token: i64 = r.get(2);
        let nodes: i64 = r.get(3);
        assert_eq!(
            nodes, 1,
            "{key:?} token {token} committed from {nodes} nodes"
        );
        let (from, to): (i64, i64) = (r.get(4), r.get(5));
        let (low, high): (i64, i64) = (r.get(6), r.get(7));
        commits += r.get::<i64, _>(8);
        if let Some((prev_to, prev_token, prev_high)) = last.get(&key) {
            assert!(
                *prev_to < from,
                "{key:?}: token {prev_token} committed after token {token} began"
            );
            assert!(*prev_token < token, "{key:?}: tokens only grow");
            assert!(
                *prev_high <= low,
                "{key:?}: token {token} went back before {prev_high}"
            );
        }
        last.insert(key, (to, token, high));
    }
    assert!(
        last.len() >= VERSIONS,
        "every version committed: {}",
        last.len()
    );
    eprintln!(
        "cluster: {commits} commits audited under {} leases",
        rows.len()
    );
}
