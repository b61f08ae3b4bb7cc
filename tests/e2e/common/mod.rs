//! Shared by the end-to-end tests: a real `refract serve` process on a temporary
//! data directory, a small API client, and the help-desk event generator.

#![allow(dead_code)]

pub mod backend;
pub mod bystander;
pub mod faulty;
pub mod helpdesk;
pub mod receiver;
pub mod turns;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A `refract serve` child process; killed when dropped.
pub struct Daemon {
    child: Child,
    /// Base URL of its API.
    pub url: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    log: PathBuf,
    http: reqwest::Client,
    /// Its turn among the tests' daemons (alone once a bystander measures it).
    turn: std::sync::Mutex<Option<turns::Turn>>,
}

static STARTS: AtomicUsize = AtomicUsize::new(0);

impl Daemon {
    /// Starts a daemon on `data_dir` with an optional TOML config and waits until it listens.
    pub fn start(data_dir: &Path, config: Option<&str>) -> Self {
        Self::launch("serve", data_dir, config, &[])
    }

    /// Starts node `node_id` of a cluster on the PostgreSQL store `store` (every
    /// node of one cluster names the same store; each has its own data directory).
    pub fn start_node(data_dir: &Path, store: &str, node_id: &str, config: Option<&str>) -> Self {
        Self::launch_as("serve", data_dir, config, &[], Some((store, node_id)))
    }

    /// Starts `refract dev` watching `paths` and waits until it listens.
    pub fn start_dev(data_dir: &Path, config: Option<&str>, paths: &[&Path]) -> Self {
        Self::launch("dev", data_dir, config, paths)
    }

    fn launch(verb: &str, data_dir: &Path, config: Option<&str>, paths: &[&Path]) -> Self {
        Self::launch_as(verb, data_dir, config, paths, None)
    }

    /// Launches `refract <verb>`, as node `(store, node id)` of a cluster if given.
    fn launch_as(
        verb: &str,
        data_dir: &Path,
        config: Option<&str>,
        paths: &[&Path],
        node: Option<(&str, &str)>,
    ) -> Self {
        let turn = turns::shared();
        std::fs::create_dir_all(data_dir).expect("create data dir");
        let n = STARTS.fetch_add(1, Ordering::SeqCst);
        let log = data_dir.with_file_name(format!(
            "{}-daemon-{n}.log",
            data_dir
                .file_name()
                .and_then(|s| s.to_str())
                .unwrap_or("data")
        ));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_refract"));
        cmd.arg(verb)
            .args(paths)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .env_remove("REFRACT_STORE")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("create log"));
        match node {
            Some((store, node)) => {
                cmd.args(["--store", store, "--node-id", node]);
            }
            None => {
                if let Some(url) = backend::store_url(data_dir) {
                    cmd.arg("--store").arg(url);
                }
            }
        }
        if let Some(text) = config {
            let path = data_dir.with_extension("toml");
            std::fs::write(&path, text).expect("write config");
            cmd.arg("--config").arg(path);
        }
        let mut child = cmd.spawn().expect("spawn refract");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("refract listening on ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "daemon did not start:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        Self {
            child,
            url,
            data_dir: data_dir.to_owned(),
            log,
            http: reqwest::Client::new(),
            turn: std::sync::Mutex::new(Some(turn)),
        }
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the process is still the one started (it has not exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// From now on no other test's daemon runs until this test's daemons are gone
    /// (waits for those running): a bystander measures only what this test does.
    pub fn run_alone(&self) {
        let mut turn = self.turn.lock().unwrap_or_else(|p| p.into_inner());
        // Given back first: a test never waits for itself.
        drop(turn.take());
        *turn = Some(turns::alone());
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The daemon's peak resident memory so far (VmHWM), in bytes.
    pub fn peak_rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the daemon's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .expect("VmHWM in /proc status")
    }

    /// Panics if the daemon's peak resident memory reached `bound` bytes.
    pub fn assert_peak_rss_below(&self, bound: u64) {
        let peak = self.peak_rss_bytes();
        eprintln!("daemon peak RSS {} MiB", peak >> 20);
        assert!(
            peak < bound,
            "daemon peak RSS {} MiB is not below {} MiB",
            peak >> 20,
            bound >> 20
        );
    }

    /// Sends SIGTERM and panics unless the daemon has exited within `limit`; returns
    /// how long it took.
    pub fn sigterm_within(&mut self, limit: Duration) -> Duration {
        let started = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                let took = started.elapsed();
                eprintln!("daemon ended {took:?} after SIGTERM");
                return took;
            }
            if started.elapsed() > limit {
                let log = self.log();
                self.kill();
                let lines: Vec<&str> = log.lines().collect();
                panic!(
                    "the daemon did not end within {limit:?} of SIGTERM; its log ends:\n{}",
                    lines[lines.len().saturating_sub(30)..].join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a request; returns the status and the body as JSON (or as a JSON string).
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> (u16, Value) {
        self.request_as(None, method, path, body).await
    }

    /// Sends a request with `token` as the bearer token (none: no header).
    pub async fn request_as(
        &self,
        token: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().await.expect("request reaches the daemon");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("response body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// GET returning status and JSON.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::GET, path, None).await
    }

    /// POST a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.request(
            reqwest::Method::POST,
            path,
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    /// Deploys a component file; panics unless it is accepted.
    pub async fn deploy(&self, wasm_path: &str) -> Value {
        let wasm = std::fs::read(wasm_path).expect("read component");
        let (status, body) = self
            .request(reqwest::Method::POST, "/components", Some(wasm))
            .await;
        assert_eq!(status, 200, "deploy {wasm_path}: {body}");
        body
    }

    /// Appends events to a stream; returns status and body.
    pub async fn append(
        &self,
        stream: &str,
        expected: Option<u64>,
        events: &[(String, Value)],
    ) -> (u16, Value) {
        let events: Vec<Value> = events
            .iter()
            .map(|(t, d)| json!({"type": t, "data": d}))
            .collect();
        self.post_json(
            &format!("/streams/{stream}/events"),
            &json!({"expected_version": expected, "events": events}),
        )
        .await
    }

    /// Appends `ValueAdded` events with these values to `stream` (the value-sum
    /// guests' events); returns the last sequence.
    pub async fn add_values(&self, stream: &str, values: &[i64]) -> i64 {
        let events: Vec<(String, Value)> = values
            .iter()
            .map(|v| ("ValueAdded".to_owned(), json!({ "value": v })))
            .collect();
        let (code, out) = self.append(stream, None, &events).await;
        assert_eq!(code, 200, "{out}");
        out["last_sequence"].as_i64().expect("last_sequence")
    }

    /// Puts `wasm` in place of the deployed build of the same name and version (a
    /// hotfix: documents and progress kept).
    pub async fn hotfix(&self, wasm: &str) {
        let bytes = std::fs::read(wasm).expect("built");
        let (code, body) = self
            .request(
                reqwest::Method::POST,
                "/components?replace=true",
                Some(bytes),
            )
            .await;
        assert_eq!(code, 200, "{body}");
    }

    /// The status row of one projection version.
    pub async fn projection(&self, name: &str, version: u32) -> Value {
        let (status, list) = self.get("/projections").await;
        assert_eq!(status, 200, "{list}");
        list.as_array()
            .and_then(|l| {
                l.iter()
                    .find(|p| p["name"] == name && p["version"] == version)
                    .cloned()
            })
            .unwrap_or_else(|| panic!("{name} v{version} not in {list}"))
    }

    /// Waits until the live version's document `id` of `projection` satisfies `ok`
    /// (or 30 s pass) and returns it.
    pub async fn wait_doc(&self, projection: &str, id: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let (_, doc) = self
                .get(&format!("/projections/{projection}/docs/{id}"))
                .await;
            if ok(&doc) || started.elapsed() > Duration::from_secs(30) {
                return doc;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (up to 60 s) until `token`'s projection version has reached `head`.
    pub async fn wait_caught_up_as(
        &self,
        token: Option<&str>,
        name: &str,
        version: u32,
        head: i64,
    ) {
        let started = Instant::now();
        loop {
            let (_, list) = self
                .request_as(token, reqwest::Method::GET, "/projections", None)
                .await;
            let at = list.as_array().and_then(|l| {
                l.iter()
                    .find(|p| p["name"] == name && p["version"] == version)
                    .and_then(|p| p["position"].as_i64())
            });
            if at >= Some(head) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{name} v{version}: {list}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until a projection version has processed everything up to `head`.
    pub async fn wait_caught_up(
        &self,
        name: &str,
        version: u32,
        head: i64,
        timeout: Duration,
    ) -> Value {
        let started = Instant::now();
        loop {
            let p = self.projection(name, version).await;
            if p["position"].as_i64() >= Some(head) {
                return p;
            }
            assert!(
                p["status"] != "paused",
                "{name} paused: {p}\n{}",
                self.log()
            );
            assert!(
                started.elapsed() < timeout,
                "{name} not caught up after {timeout:?}: {p}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}
