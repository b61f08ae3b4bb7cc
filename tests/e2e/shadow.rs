//! Shadow re-projection: a same-version build under `refract dev`, and `refract
//! rebuild`, project into shadow tables while the running code keeps serving; reads
//! never answer 404 and only ever show a whole fold of the old or the new code.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::JoinHandle;

use crate::common::Daemon;
use crate::dev::{
    append_incidents, edited_fold, rebuild, sample_fold, wait_for_docs, wait_for_log,
};

/// The documents a read of each polled id may show.
type Allowed = Arc<Mutex<BTreeMap<String, Vec<Value>>>>;

/// Reads the polled documents over and over until stopped; fails on the first read
/// that is not 200 or shows a document not allowed at that moment. Returns the
/// number of reads.
struct Poller {
    allowed: Allowed,
    stop: Arc<AtomicBool>,
    task: JoinHandle<Result<u64, String>>,
}

impl Poller {
    fn start(daemon: &Daemon, docs: &BTreeMap<String, Value>) -> Self {
        // A spread of ids: the first, the last and some between.
        let ids: Vec<String> = docs.keys().step_by(docs.len() / 8 + 1).cloned().collect();
        let allowed: Allowed = Arc::new(Mutex::new(
            ids.iter()
                .map(|id| (id.clone(), vec![docs[id].clone()]))
                .collect(),
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let (url, a, s) = (daemon.url.clone(), allowed.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut reads = 0u64;
            while !s.load(Ordering::SeqCst) {
                for id in &ids {
                    let resp = http
                        .get(format!("{url}/projections/incident-details/docs/{id}"))
                        .send()
                        .await
                        .map_err(|e| format!("read {id}: {e}"))?;
                    let status = resp.status().as_u16();
                    let text = resp.text().await.map_err(|e| format!("body: {e}"))?;
                    if status != 200 {
                        return Err(format!("read {reads} of {id} answered {status}: {text}"));
                    }
                    let doc: Value =
                        serde_json::from_str(&text).map_err(|e| format!("{id}: {e}: {text}"))?;
                    let ok = a
                        .lock()
                        .map_err(|_| "poisoned".to_owned())?
                        .get(id)
                        .is_some_and(|docs| docs.contains(&doc));
                    if !ok {
                        return Err(format!("read {reads} of {id} shows {doc}"));
                    }
                    reads += 1;
                }
            }
            Ok(reads)
        });
        Self {
            allowed,
            stop,
            task,
        }
    }

    /// From now on reads may also show `docs`' version of each polled document.
    fn also_allow(&self, docs: &BTreeMap<String, Value>) {
        let mut allowed = self.allowed.lock().expect("lock");
        for (id, list) in allowed.iter_mut() {
            list.push(docs[id].clone());
        }
    }

    /// Stops polling; panics with the first bad read, if any. Returns the reads.
    async fn finish(self, daemon: &Daemon) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        match self.task.await.expect("poller task") {
            Ok(reads) => reads,
            Err(e) => panic!("{e}\n{}", daemon.log()),
        }
    }
}

/// Polls the status of incident-details v1 until `done` holds; returns every
/// `candidate.state` seen on the way.
async fn watch_candidate(daemon: &Daemon, done: impl Fn(&Value) -> bool) -> (Value, Vec<String>) {
    let started = Instant::now();
    let mut seen = Vec::new();
    loop {
        let p = daemon.projection("incident-details", 1).await;
        if let Some(state) = p["candidate"]["state"].as_str()
            && seen.last().map(String::as_str) != Some(state)
        {
            seen.push(state.to_owned());
        }
        if done(&p) {
            return (p, seen);
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "candidate never got there: {p}\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_keeps_serving_through_a_panicking_build_and_swaps_a_good_one_when_caught_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let watched = dir.path().join("components");
    std::fs::create_dir_all(&watched).expect("mkdir");
    let file = watched.join("incident_details.wasm");
    std::fs::copy(refract_test_artifacts::INCIDENT_DETAILS_V1, &file).expect("copy");
    // Small pages: a re-projection takes a while, long enough to be read through.
    let daemon = Daemon::start_dev(
        &dir.path().join("data"),
        Some("page_size = 10\n"),
        &[&watched],
    );
    let mut events = append_incidents(&daemon, 61, 300, "a").await;
    // The new build panics on these, after re-projecting everything before them.
    events.extend(append_incidents(&daemon, 62, 3, "boom").await);
    let head = events.len() as i64;
    daemon
        .wait_caught_up("incident-details", 1, head, Duration::from_secs(60))
        .await;
    wait_for_docs(&daemon, &events, sample_fold).await;
    let poller = Poller::start(&daemon, &sample_fold(&events));

    // A panicking build of the same version: a candidate that fails; the documents
    // of the running build are served all along, and after.
    rebuild(&file, refract_test_artifacts::INCIDENT_DETAILS_PANICKY);
    let (p, seen) = watch_candidate(&daemon, |p| p["candidate"]["state"] == "failed").await;
    assert_eq!(
        seen.first().map(String::as_str),
        Some("building"),
        "{seen:?}"
    );
    let candidate = &p["candidate"];
    assert_eq!(candidate["cause"], "reload", "{p}");
    let message = candidate["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("the new build cannot handle incident boom-"),
        "the candidate's error: {p}"
    );
    assert!(candidate["position"].as_i64() < Some(head), "{p}");
    assert_eq!(
        (&p["state"], &p["status"], &p["error"]),
        (&Value::from("live"), &Value::from("running"), &Value::Null),
        "the running build is untouched: {p}"
    );
    wait_for_log(&daemon, "the previous build keeps serving").await;
    // The running build keeps projecting new events.
    events.extend(append_incidents(&daemon, 63, 20, "b").await);
    wait_for_docs(&daemon, &events, sample_fold).await;
    let p = daemon.projection("incident-details", 1).await;
    assert_eq!(p["candidate"]["state"], "failed", "still shown: {p}");

    // A good build of the same version: swapped in once caught up.
    poller.also_allow(&edited_fold(&events));
    rebuild(&file, refract_test_artifacts::INCIDENT_DETAILS_EDITED);
    let (p, seen) = watch_candidate(&daemon, |p| p["candidate"].is_null()).await;
    assert!(
        seen.contains(&"building".to_owned()),
        "{seen:?}\n{}",
        daemon.log()
    );
    wait_for_log(
        &daemon,
        "incident-details@v1 caught up: swapped in the new build",
    )
    .await;
    wait_for_docs(&daemon, &events, edited_fold).await;
    let head = events.len() as i64;
    assert_eq!(
        (&p["events_applied"], &p["state"]),
        (&Value::from(head), &Value::from("live")),
        "the candidate's progress took the version's place: {p}"
    );
    let reads = poller.finish(&daemon).await;
    assert!(reads > 100, "only {reads} reads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_serves_the_documents_until_it_swaps_in_and_a_restart_drops_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let config = "page_size = 10\n";
    let mut daemon = Daemon::start(&data, Some(config));
    daemon
        .deploy(refract_test_artifacts::INCIDENT_DETAILS_V1)
        .await;
    let events = append_incidents(&daemon, 64, 300, "r").await;
    let head = events.len() as i64;
    daemon
        .wait_caught_up("incident-details", 1, head, Duration::from_secs(60))
        .await;
    wait_for_docs(&daemon, &events, sample_fold).await;
    let want = sample_fold(&events);
    let rebuild_path = "/projections/incident-details/versions/1/rebuild";

    // Killed during the rebuild: the restart drops the candidate and serves the
    // documents it had.
    let (code, body) = daemon
        .request(reqwest::Method::POST, rebuild_path, None)
        .await;
    assert_eq!(code, 200, "{body}");
    let p = daemon.projection("incident-details", 1).await;
    assert_eq!(p["candidate"]["state"], "building", "{p}");
    assert_eq!(p["candidate"]["cause"], "rebuild", "{p}");
    daemon.kill();
    let daemon = Daemon::start(&data, Some(config));
    wait_for_log(&daemon, "dropped an unfinished candidate").await;
    let poller = Poller::start(&daemon, &want);
    let p = daemon.projection("incident-details", 1).await;
    assert!(p["candidate"].is_null(), "{p}");
    assert_eq!(p["position"], head, "{p}");

    // Rebuilt to the end this time: reads never miss, the same documents after.
    let (code, body) = daemon
        .request(reqwest::Method::POST, rebuild_path, None)
        .await;
    assert_eq!(code, 200, "{body}");
    let (p, seen) = watch_candidate(&daemon, |p| p["candidate"].is_null()).await;
    assert_eq!(seen, ["building"], "{p}");
    wait_for_log(&daemon, "the candidate caught up and was swapped in").await;
    assert_eq!(
        (&p["events_applied"], &p["position"], &p["state"]),
        (&Value::from(head), &Value::from(head), &Value::from("live")),
        "{p}"
    );
    wait_for_docs(&daemon, &events, sample_fold).await;
    let reads = poller.finish(&daemon).await;
    assert!(reads > 100, "only {reads} reads");
}
