//! The classic bug of a poller on a sequence column, on PostgreSQL (issue 13): 8
//! writers append side by side while other transactions take positions and roll
//! back, or hold theirs open for seconds before committing. A counter projection
//! and a subscription run throughout. At the end every committed event was
//! projected exactly once (each stream's count is its version), the subscription
//! handled each event once, nothing rolled back is visible, and no projection
//! stalled much longer than the longest open transaction. Runs only on PostgreSQL
//! (`REFRACT_TEST_DATABASE_URL`); SQLite commits in order by construction.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::common::{Daemon, backend, receiver::Receiver};

/// Writers appending through the API at once.
const WRITERS: usize = 8;
/// Appends per writer in CI; `REFRACT_PG_ORDER_APPENDS` sets another count (5,000
/// makes the million events).
const APPENDS: usize = 40;
/// Events per append.
const BATCH: usize = 25;
/// How long a holding transaction stays open before it commits.
const HOLD: Duration = Duration::from_secs(2);
/// How long an append may go unanswered (far past `HOLD`).
const ANSWER: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_with_late_and_rolled_back_transactions_lose_and_double_nothing() {
    if !backend::is_postgres() {
        eprintln!("skipped: PostgreSQL only (REFRACT_TEST_DATABASE_URL is not set)");
        return;
    }
    let (receiver, addr) = Receiver::start(0).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let config = format!(
        "[teams.default]\noutbound_hosts = [\"{addr}\"]\n\
         [components.outbox-probe.settings]\nwebhook_url = \"http://{addr}/hooks/incidents\"\n"
    );
    let daemon = Daemon::start(&data, Some(&config));
    let db = backend::store_url(&data).expect("the daemon's database");
    daemon.deploy(refract_test_artifacts::STREAM_COUNTER).await;
    daemon.deploy(refract_test_artifacts::OUTBOX_PROBE).await;

    let started = Instant::now();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rollbacks = tokio::spawn(roll_back_until(db.clone(), stop.clone()));
    let holders: Vec<_> = (0..2)
        .map(|h| tokio::spawn(hold_then_commit(db.clone(), h)))
        .collect();
    let sampler = tokio::spawn(longest_stall(daemon.url.clone(), stop.clone()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let url = daemon.url.clone();
            tokio::spawn(async move { write(url, w).await })
        })
        .collect();
    let mut versions = BTreeMap::new();
    let mut probes = 0;
    for w in writers {
        let (v, p) = w.await.expect("writer");
        versions.extend(v);
        probes += p;
    }
    for h in holders {
        versions.extend(h.await.expect("holder"));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rolled_back = rollbacks.await.expect("roll-backs");
    let stall = sampler.await.expect("sampler");
    let written: u64 = versions.values().sum();
    eprintln!(
        "{} streams, {written} events committed, {rolled_back} rolled back, {probes} probes, \
         in {:?}; longest stall {stall:?} (longest open transaction {HOLD:?})",
        versions.len(),
        started.elapsed()
    );

    let (_, list) = daemon.get("/projections").await;
    let head = list[0]["head"].as_i64().expect("head");
    assert_eq!(
        head as u64,
        written + probes,
        "dense: one sequence per committed event"
    );
    daemon
        .wait_caught_up("stream-counter", 1, head, Duration::from_secs(120))
        .await;
    daemon
        .wait_caught_up("outbox-probe", 1, head, Duration::from_secs(120))
        .await;
    for (stream, version) in &versions {
        let (status, doc) = daemon
            .get(&format!("/projections/stream-counter/docs/{stream}"))
            .await;
        assert_eq!(status, 200, "{stream}: {doc}");
        assert_eq!(
            doc["total"], *version,
            "{stream} counted once per event: {doc}"
        );
    }
    for r in 0..rolled_back.min(20) {
        let (status, _) = daemon
            .get(&format!("/projections/stream-counter/docs/rb-{r}"))
            .await;
        assert_eq!(status, 404, "a rolled-back stream is never projected");
    }
    // Every probe event reaches the receiver once (ids are stream/sequence).
    let deadline = Instant::now() + Duration::from_secs(60);
    while receiver.accepted.lock().expect("lock").len() < probes as usize
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let accepted = receiver.accepted.lock().expect("lock").clone();
    let ids: HashSet<&str> = accepted.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        accepted.len() as u64,
        probes,
        "each probe event handled once"
    );
    assert_eq!(ids.len() as u64, probes, "no message twice");
    assert!(
        stall < HOLD + Duration::from_secs(8),
        "the projection stalled {stall:?}, past the longest open transaction ({HOLD:?})"
    );
}

/// One writer: `APPENDS` appends of `BATCH` counted events to its own streams, and
/// a probe event every fourth append. Returns each stream's version and the probes.
async fn write(url: String, w: usize) -> (BTreeMap<String, u64>, u64) {
    // An append answers once its events are ordered: one never answered is an
    // event the order lost.
    let http = reqwest::Client::builder()
        .timeout(ANSWER)
        .build()
        .expect("client");
    let mut versions = BTreeMap::new();
    let mut probes = 0;
    let appends = std::env::var("REFRACT_PG_ORDER_APPENDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(APPENDS);
    for a in 0..appends {
        let stream = format!("w{w}-s{}", a % 5);
        let events: Vec<_> = (0..BATCH)
            .map(|i| json!({"type": "IncidentLogged", "data": {"i": i}}))
            .collect();
        let r = http
            .post(format!("{url}/streams/{stream}/events"))
            .json(&json!({"events": events}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("append to {stream} unanswered (never ordered?): {e}"));
        assert!(
            r.status().is_success(),
            "append: {}",
            r.text().await.unwrap_or_default()
        );
        *versions.entry(stream).or_insert(0) += BATCH as u64;
        if a % 4 == 0 {
            let r = http
                .post(format!("{url}/streams/probe-w{w}-{a}/events"))
                .json(&json!({"events": [{"type": "OutboxProbe", "data": {}}]}))
                .send()
                .await
                .unwrap_or_else(|e| panic!("probe unanswered (never ordered?): {e}"));
            assert!(r.status().is_success());
            probes += 1;
        }
    }
    (versions, probes)
}

/// Transactions that take positions and roll back, until told to stop; how many.
async fn roll_back_until(db: String, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> usize {
    let mut conn = PgConnection::connect(&db).await.expect("connect");
    let mut n = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let mut tx = conn.begin().await.expect("begin");
        insert(&mut tx, &format!("rb-{n}"), 0, 5).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        tx.rollback().await.expect("rollback");
        n += 1;
    }
    n
}

/// Three transactions that insert, stay open for `HOLD` while everyone else
/// commits past them, then commit.
async fn hold_then_commit(db: String, h: usize) -> BTreeMap<String, u64> {
    let mut conn = PgConnection::connect(&db).await.expect("connect");
    let stream = format!("held-{h}");
    let mut version = 0;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(300 + 200 * h as u64)).await;
        let mut tx = conn.begin().await.expect("begin");
        insert(&mut tx, &stream, version, 10).await;
        tokio::time::sleep(HOLD).await;
        tx.commit().await.expect("commit");
        version += 10;
    }
    BTreeMap::from([(stream, version)])
}

/// `n` counted events after `version` on `stream`, as an appender writes them.
async fn insert(conn: &mut PgConnection, stream: &str, version: u64, n: u64) {
    sqlx::query(
        "INSERT INTO streams (stream_id, version) VALUES ($1, $2) \
         ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version",
    )
    .bind(stream)
    .bind((version + n) as i64)
    .execute(&mut *conn)
    .await
    .expect("stream row");
    sqlx::query(
        "INSERT INTO events (stream_id, stream_version, event_type, data, metadata, created_at) \
         SELECT $1, $2 + g, 'IncidentLogged', '{}', '{}', 0 FROM generate_series(1, $3) g",
    )
    .bind(stream)
    .bind(version as i64)
    .bind(n as i64)
    .execute(&mut *conn)
    .await
    .expect("events");
}

/// The longest time the counter's position stood still while the store had
/// events it had not projected, sampled every 50 ms until told to stop.
async fn longest_stall(
    url: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Duration {
    let http = reqwest::Client::new();
    let (mut longest, mut since, mut last) = (Duration::ZERO, Instant::now(), -1i64);
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let list: serde_json::Value = match http.get(format!("{url}/projections")).send().await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        };
        let row = list
            .as_array()
            .and_then(|l| l.iter().find(|p| p["name"] == "stream-counter"));
        if let Some(p) = row {
            let position = p["position"].as_i64().unwrap_or(0);
            let behind = p["lag"].as_i64().unwrap_or(0) > 0 || p.get("waiting_for").is_some();
            if position != last || !behind {
                since = Instant::now();
                last = position;
            }
            longest = longest.max(since.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    longest
}
