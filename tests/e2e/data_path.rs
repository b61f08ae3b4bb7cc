//! The agent's data path at the daemon level, on a real store (a SQLite file, or
//! a PostgreSQL database where the tests run on one): more documents
//! than the cache budget with hot streams in every page (the real stream-counter
//! component), failed commits followed by guest errors (a fault-injecting wrapper
//! around the real store), and a stop while a commit is in flight.

use std::collections::HashMap;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use refract::daemon::{Daemon, ErrorPolicy, OnError, PageProjector};
use refract::runtime::{
    DocChange, DocInput, Event, Limits, Runtime, RuntimeError, Slice, slice_by_stream,
};
use refract::store::*;
use serde_json::Value;

use crate::common::backend;
use crate::common::faulty::Faulty;

fn key(name: &str) -> ProjectionKey {
    ProjectionKey {
        name: name.into(),
        version: 1,
    }
}

/// Appends `streams` one-event streams and, after every 49 of them, one event to
/// one of `hot_streams` hot streams; returns each stream's version.
async fn wide_store(store: &dyn Store, streams: usize, hot_streams: usize) -> HashMap<String, u64> {
    let mut versions = HashMap::new();
    let mut hot = 0usize;
    for i in 0..streams {
        let mut ids = vec![format!("cold-{i}")];
        if i % 49 == 48 {
            ids.push(format!("hot-{}", hot % hot_streams));
            hot += 1;
        }
        for id in ids {
            let v = versions.entry(id.clone()).or_insert(0u64);
            *v += 1;
            store
                .append(AppendRequest {
                    stream: StreamId::new(&id).expect("id"),
                    expected: ExpectedVersion::Any,
                    idempotency_key: None,
                    tenant: None,
                    team: "default".into(),
                    events: vec![NewEvent {
                        event_type: "IncidentLogged".into(),
                        data: "{}".into(),
                        metadata: "{}".into(),
                    }],
                })
                .await
                .expect("append");
        }
    }
    versions
}

async fn wait_for(store: &dyn Store, key: &ProjectionKey, position: Position) -> Progress {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let p = store.progress(key).await.expect("progress");
        if p.position >= position || p.status == RunStatus::Paused {
            return p;
        }
        assert!(Instant::now() < deadline, "stuck at {p:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn docs(store: &dyn Store, key: &ProjectionKey, ids: &[&String]) -> HashMap<String, Value> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(500) {
        let refs: Vec<&str> = chunk.iter().map(|s| s.as_str()).collect();
        for (id, body) in store.load_docs(key, &refs).await.expect("docs") {
            out.insert(id, serde_json::from_str(&body).expect("json"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_documents_than_the_cache_budget_lose_no_update() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Faulty::new(backend::open_store(&dir.path().join("r.db")).await);
    let versions = wide_store(store.as_ref(), 12_000, 5).await;
    // Slow commits (as big pages on a busy disk are): the next page is projected,
    // and loads its documents, while the commit before it is still in flight.
    store.commit_delay_ms.store(20, SeqCst);
    let rt = Runtime::new(None, Limits::default()).expect("runtime");
    let wasm = std::fs::read(refract_test_artifacts::STREAM_COUNTER).expect("built");
    let loaded = rt.load(&wasm).expect("loads");
    let k = key("stream-counter");
    store.prepare_projection(&k).await.expect("prepare");
    // 32 KiB of documents (about 200) against 12,000 streams, pages of 300 events:
    // the cache is evicted on nearly every page, and each of the 5 hot streams has
    // an event in nearly every page.
    let daemon = Daemon::new(store.clone(), 300).with_budgets(1 << 20, 32 << 10);
    daemon.start_as(k.clone(), &loaded);
    let head = store.head().await.expect("head");
    let p = wait_for(store.as_ref(), &k, head).await;
    daemon.shutdown().await;
    assert_eq!(p.status, RunStatus::Running, "{:?}", p.error);
    let ids: Vec<&String> = versions.keys().collect();
    let docs = docs(store.as_ref(), &k, &ids).await;
    assert_eq!(docs.len(), versions.len());
    let wrong: Vec<_> = versions
        .iter()
        .filter(|(id, v)| docs[*id]["total"].as_u64() != Some(**v))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} streams miscounted: {wrong:?}",
        wrong.len()
    );
    assert!(versions["hot-0"] > 1);
}

/// Counts events per stream; fails (as a guest would) on chosen events.
struct Counter {
    fail_on: Arc<Mutex<Vec<Position>>>,
    fail_without_naming: bool,
    /// Each chosen event fails once (a transient fault), not forever.
    once: bool,
    /// How long each `apply` takes (a slow guest).
    apply_ms: u64,
    /// Calls that fail as the host's fault (a full instance pool), first.
    host_faults: u32,
}

impl PageProjector for Counter {
    fn slice(&mut self, page: &[Event]) -> Result<Vec<Slice>, RuntimeError> {
        if self.host_faults > 0 {
            self.host_faults -= 1;
            return Err(RuntimeError::Host("instance pool full (injected)".into()));
        }
        let mut fail = self.fail_on.lock().expect("lock");
        if let Some(e) = page.iter().find(|e| fail.contains(&e.sequence)) {
            if self.once {
                fail.retain(|s| *s != e.sequence);
            }
            return Err(RuntimeError::Guest {
                component: "counter@v1".into(),
                event_sequence: (!self.fail_without_naming).then_some(e.sequence),
                message: format!("cannot count event {}", e.sequence),
            });
        }
        Ok(slice_by_stream(page))
    }

    fn apply(
        &mut self,
        _page: &[Event],
        docs: Vec<DocInput>,
    ) -> Result<Vec<DocChange>, RuntimeError> {
        std::thread::sleep(Duration::from_millis(self.apply_ms));
        Ok(docs
            .into_iter()
            .map(|d| {
                let before: u64 = d
                    .state
                    .and_then(|s| serde_json::from_str::<Value>(&s).ok())
                    .and_then(|v| v["total"].as_u64())
                    .unwrap_or(0);
                let total = before + d.events.len() as u64;
                DocChange::Put(format!("{{\"total\":{total}}}"))
            })
            .collect())
    }
}

fn counter(fail_on: &Arc<Mutex<Vec<Position>>>) -> Box<dyn PageProjector> {
    Box::new(Counter {
        fail_on: fail_on.clone(),
        fail_without_naming: false,
        once: true,
        apply_ms: 0,
        host_faults: 0,
    })
}

async fn assert_counts(store: &dyn Store, k: &ProjectionKey, versions: &HashMap<String, u64>) {
    let ids: Vec<&String> = versions.keys().collect();
    let docs = docs(store, k, &ids).await;
    for (id, v) in versions {
        assert_eq!(
            docs.get(id).and_then(|d| d["total"].as_u64()),
            Some(*v),
            "{id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_commits_then_guest_errors_recover_to_the_exact_fold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Faulty::new(backend::open_store(&dir.path().join("r.db")).await);
    let versions = wide_store(store.as_ref(), 3_000, 100).await;
    let k = key("counter");
    store.prepare_projection(&k).await.expect("prepare");
    // Commit 3 fails while page 4 is projected; page 4 then fails in the guest at
    // event 350 (the settle of the failed commit comes first on that path). Later
    // commits 9 and 10 fail back to back; event 1200 fails once in the guest.
    *store.fail_commits.lock().expect("lock") = vec![3, 9, 10];
    let fail_on = Arc::new(Mutex::new(vec![350, 1200]));
    let daemon = Daemon::new(store.clone(), 100).with_budgets(1 << 20, 8 << 10);
    daemon.start_with(k.clone(), vec!["IncidentLogged".into()], counter(&fail_on));
    let head = store.head().await.expect("head");
    let p = wait_for(store.as_ref(), &k, head).await;
    daemon.shutdown().await;
    assert_eq!(p.status, RunStatus::Running, "{:?}", p.error);
    assert_eq!(
        p.events_applied as usize,
        versions.values().sum::<u64>() as usize
    );
    assert!(store.finished.load(SeqCst) > 10);
    assert_counts(store.as_ref(), &k, &versions).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_during_a_commit_waits_for_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Faulty::new(backend::open_store(&dir.path().join("r.db")).await);
    wide_store(store.as_ref(), 2_000, 100).await;
    let k = key("counter");
    store.prepare_projection(&k).await.expect("prepare");
    store.commit_delay_ms.store(300, SeqCst);
    let none = Arc::new(Mutex::new(Vec::new()));
    for round in 0..3 {
        let daemon = Daemon::new(store.clone(), 100);
        daemon.start_with(k.clone(), vec!["IncidentLogged".into()], counter(&none));
        store.wait_for_a_commit().await;
        // Stop while the agent settles (or projects beside) a slow commit.
        tokio::time::sleep(Duration::from_millis(100 + 50 * round)).await;
        daemon.stop(&k).await;
        store.assert_nothing_lands(Duration::from_millis(800)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_aborted_mid_commit_still_lands_its_commit_before_stop_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Faulty::new(backend::open_store(&dir.path().join("r.db")).await);
    wide_store(store.as_ref(), 1_000, 100).await;
    let k = key("counter");
    store.prepare_projection(&k).await.expect("prepare");
    store.commit_delay_ms.store(400, SeqCst);
    // A slow guest: the agent is inside the next page's apply when it is told to
    // stop, does not finish within the grace period, and is aborted while page
    // 1's commit is still writing.
    let slow = Box::new(Counter {
        fail_on: Arc::new(Mutex::new(Vec::new())),
        fail_without_naming: false,
        once: true,
        apply_ms: 1_000,
        host_faults: 0,
    });
    let daemon = Daemon::new(store.clone(), 100).with_stop_grace(Duration::from_millis(50));
    daemon.start_with(k.clone(), vec!["IncidentLogged".into()], slow);
    store.wait_for_a_commit().await;
    daemon.stop(&k).await;
    store
        .assert_nothing_lands(Duration::from_millis(1_500))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_is_dead_lettered_and_replayed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = backend::open_store(&dir.path().join("r.db")).await;
    let versions = wide_store(store.as_ref(), 1_500, 100).await;
    let k = key("counter");
    store.prepare_projection(&k).await.expect("prepare");
    let (poison, other): (Position, Position) = (777, 901);
    let fail_on = Arc::new(Mutex::new(vec![poison, other]));
    let daemon = Daemon::new(store.clone(), 400);
    let projector = Box::new(Counter {
        fail_on: fail_on.clone(),
        // A limit hit names no event: the page is halved until it stands alone.
        fail_without_naming: true,
        once: false,
        apply_ms: 0,
        host_faults: 0,
    });
    let policy = ErrorPolicy {
        attempts: 2,
        on_error: OnError::DeadLetter,
    };
    daemon.start_with_policy(k.clone(), vec!["IncidentLogged".into()], projector, policy);
    let head = store.head().await.expect("head");
    let p = wait_for(store.as_ref(), &k, head).await;
    assert_eq!(p.status, RunStatus::Running, "{:?}", p.error);
    let letters = store.dead_letters(&k).await.expect("dead letters");
    let seqs: Vec<Position> = letters.iter().map(|d| d.sequence).collect();
    assert_eq!(seqs, [poison, other], "{letters:?}");
    assert!(
        letters[0].error.contains("cannot count event 777"),
        "{letters:?}"
    );
    let total: u64 = versions.values().sum();
    assert_eq!(p.events_applied, total - 2);
    // A fix for one of them: the replay applies it; the other stays a letter.
    fail_on.lock().expect("lock").retain(|s| *s != poison);
    let replayed = daemon.replay_dead_letters(&k).await.expect("replay");
    assert_eq!((replayed.replayed, replayed.failing), (1, 1));
    let letters = store.dead_letters(&k).await.expect("dead letters");
    let seqs: Vec<Position> = letters.iter().map(|d| d.sequence).collect();
    assert_eq!(seqs, [other], "{letters:?}");
    // The full fix: the last one applies too.
    fail_on.lock().expect("lock").clear();
    let replayed = daemon.replay_dead_letters(&k).await.expect("replay");
    assert_eq!((replayed.replayed, replayed.failing), (1, 0));
    assert!(store.dead_letters(&k).await.expect("letters").is_empty());
    daemon.shutdown().await;
    assert_counts(store.as_ref(), &k, &versions).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_faults_are_waited_out_and_never_cost_the_guest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = backend::open_store(&dir.path().join("r.db")).await;
    let versions = wide_store(store.as_ref(), 500, 100).await;
    let k = key("counter");
    store.prepare_projection(&k).await.expect("prepare");
    // Three host faults in a row, pages of 4, one attempt, the dead-letter policy:
    // counted as the guest's, they would narrow the page to one event (4, 2, 1)
    // and dead-letter it.
    let projector = Box::new(Counter {
        fail_on: Arc::new(Mutex::new(Vec::new())),
        fail_without_naming: true,
        once: false,
        apply_ms: 0,
        host_faults: 3,
    });
    let policy = ErrorPolicy {
        attempts: 1,
        on_error: OnError::DeadLetter,
    };
    let daemon = Daemon::new(store.clone(), 4);
    daemon.start_with_policy(k.clone(), vec!["IncidentLogged".into()], projector, policy);
    let head = store.head().await.expect("head");
    let p = wait_for(store.as_ref(), &k, head).await;
    daemon.shutdown().await;
    assert_eq!(p.status, RunStatus::Running, "{:?}", p.error);
    assert!(store.dead_letters(&k).await.expect("letters").is_empty());
    assert_eq!(p.events_applied, versions.values().sum::<u64>());
    assert_counts(store.as_ref(), &k, &versions).await;
}
