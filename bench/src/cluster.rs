//! The cluster workload (issue 15): three `refract serve` processes (`--node-id`
//! n1, n2, n3, leases of 3 s) on one fresh PostgreSQL database. Three components are
//! deployed through n1; once `GET /cluster` shows every node alive and every version
//! held, none above its share, probes run one at a time: an `IncidentLogged` appended to a fresh stream through
//! one node (round robin), its incident-details document read through the next node
//! with `?after=<last_sequence>` (a read-your-writes wait), timed from the append's
//! request to the document (p50/p99). Then the node holding the most agents is
//! killed (SIGKILL) and `GET /cluster` on a survivor is polled every 50 ms until the
//! survivors hold every version: the takeover time. More probes on the two survivors
//! follow (p50/p99). Several nodes share only a PostgreSQL store, so the workload is
//! skipped on SQLite. Each node's stderr is `node.log` in its data directory.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use refract_test_artifacts::{INCIDENT_DETAILS_V1, STREAM_COUNTER, WORD_COUNT};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::Scale;
use crate::backend::Backend;
use crate::helpdesk::Incident;
use crate::report::Report;
use crate::server;

/// The nodes' ids, in start order (components are deployed through the first).
const NODES: [&str; 3] = ["n1", "n2", "n3"];
/// Every node's config file: leases live 3 s past their last renewal.
const CONFIG: &str = "[cluster]\nlease_ttl_ms = 3000\n";
/// The projection the probes read.
const NAME: &str = "incident-details";
/// How long a probe's read may wait for its event, in milliseconds.
const READ_TIMEOUT_MS: u64 = 10_000;
/// Time between polls of `GET /cluster`.
const POLL_EVERY: Duration = Duration::from_millis(50);
/// The longest wait for a node to listen, or for the cluster to settle.
const PATIENCE: Duration = Duration::from_secs(120);

/// One `refract serve` process.
struct Node {
    /// Its `--node-id`.
    id: &'static str,
    /// Its API's base URL.
    url: String,
    /// The process.
    child: Child,
    /// Its stderr (`node.log` in its data directory).
    log: PathBuf,
}

impl Node {
    /// Starts node `id` with `root/id` as its data directory and waits until it listens.
    async fn start(bin: &Path, root: &Path, id: &'static str, store: &str) -> anyhow::Result<Self> {
        let data = root.join(id);
        std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
        let log = data.join("node.log");
        let stderr =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = Command::new(bin)
            .arg("serve")
            .arg("--data-dir")
            .arg(&data)
            .arg("--config")
            .arg(root.join("cluster.toml"))
            .args(["--store", store, "--node-id", id, "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let listening = tokio::time::timeout(PATIENCE, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix("refract listening on ") {
                    return anyhow::Ok(url.trim().to_owned());
                }
            }
            bail!("node {id} exited before it listened")
        })
        .await
        .with_context(|| format!("node {id} did not listen within {PATIENCE:?}"))
        .and_then(|r| r);
        let url = listening.inspect_err(|_| show_tail(id, &log))?;
        // Keep draining stdout so the node never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            id,
            url,
            child,
            log,
        })
    }

    /// SIGTERM (a clean shutdown), then SIGKILL if it lingers 30 s.
    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: signals our own child process by its id.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            eprintln!("node {} ignored SIGTERM for 30 s: killed", self.id);
            let _ = self.child.kill().await;
        }
    }
}

/// Prints the last lines of a node's log.
fn show_tail(id: &str, log: &Path) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    eprintln!("node {id} log ({}), last lines:", log.display());
    for line in &lines[lines.len().saturating_sub(20)..] {
        eprintln!("  {line}");
    }
}

/// Runs the workload on a fresh database (PostgreSQL only).
pub async fn run(
    report: &mut Report,
    scale: &Scale,
    dir: &Path,
    backend: &Backend,
    bin: &Path,
) -> anyhow::Result<()> {
    if let Backend::Sqlite = backend {
        let why = "several nodes share only a PostgreSQL store (pass --store postgres://...)";
        report.skip("cluster", "p99_ms", why);
        return Ok(());
    }
    if !bin.exists() {
        let why = format!("no refract binary at {} (--refract-bin)", bin.display());
        report.skip("cluster", "p99_ms", why);
        return Ok(());
    }
    let db = backend.create(dir, "cluster").await?;
    let mut nodes = Vec::new();
    let result = async {
        let store = db.url.clone().context("the cluster's store has no URL")?;
        let config = db.data_dir.join("cluster.toml");
        std::fs::write(&config, CONFIG).with_context(|| format!("writing {}", config.display()))?;
        for id in NODES {
            nodes.push(Node::start(bin, &db.data_dir, id, &store).await?);
        }
        measure(report, scale, &mut nodes).await
    }
    .await;
    if result.is_err() {
        for n in &nodes {
            show_tail(n.id, &n.log);
        }
    }
    for n in nodes {
        n.stop().await;
    }
    db.finish().await;
    result
}

/// One probe: an append through one node, its document read through another.
struct Probe {
    /// From the append's request to the document, in milliseconds.
    ms: f64,
    /// Until the append's answer, in milliseconds.
    append_ms: f64,
    /// Whether the reading node held incident-details's lease (ran its agent).
    at_holder: bool,
}

/// Deploys, probes with three nodes, kills one, times the takeover, probes again.
async fn measure(report: &mut Report, scale: &Scale, nodes: &mut Vec<Node>) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    for path in [INCIDENT_DETAILS_V1, STREAM_COUNTER, WORD_COUNT] {
        let wasm = std::fs::read(path).with_context(|| format!("reading {path}"))?;
        server::deploy(&http, &nodes[0].url, wasm).await?;
    }
    // The deploying node takes every lease; probe once the balancer spread them.
    let (view, _) = settled(&http, nodes, true).await?;
    probes(&http, nodes, &view, "warmup", nodes.len()).await?;
    let three = probes(&http, nodes, &view, "three", scale.cluster_probes).await?;
    record(report, three, "", "3 nodes");

    // The node holding the most agents now (incident-details's, of equals) dies.
    let (view, _) = settled(&http, nodes, true).await?;
    let victim = (0..nodes.len())
        .max_by_key(|&i| {
            (
                agents_of(&view, nodes[i].id).len(),
                runs_probed(&view, nodes[i].id),
            )
        })
        .context("no nodes")?;
    let mut dead = nodes.remove(victim);
    let agents = agents_of(&view, dead.id);
    dead.child.kill().await.context("killing a node")?;
    let started = Instant::now();
    let (after, polls) = settled(&http, nodes, false).await?;
    let takeover = started.elapsed().as_secs_f64() * 1000.0;
    let label = format!("takeover after a SIGKILL (agents: {})", agents.len());
    report.add("cluster", "takeover_ms", label, takeover, "ms");
    let held = nodes
        .iter()
        .map(|n| format!("{} {:?}", n.id, agents_of(&after, n.id)));
    let shown = node_of(&after, dead.id).map(|n| n["alive"].to_string());
    report.note(format!(
        "cluster: {} killed holding {agents:?}; {polls} polls later the survivors held {} \
         ({0} alive: {})",
        dead.id,
        held.collect::<Vec<_>>().join(", "),
        shown.unwrap_or_default(),
    ));
    if takeover > 5_000.0 {
        report.note(format!(
            "cluster: the takeover took {takeover:.0} ms, over 5 s with leases of 3 s"
        ));
    }
    let two = probes(&http, nodes, &after, "two", scale.cluster_probes_after).await?;
    record(report, two, "after_", "2 nodes");
    report.check(
        "cluster",
        "every probe's document was read through a node other than the one it was \
         appended through, before and after the kill",
    );
    Ok(())
}

/// Polls `GET /cluster` on the first node until the nodes given hold every version
/// (and, if `fair`, all are alive and none holds more than its share); returns the
/// view and the polls made.
async fn settled(
    http: &reqwest::Client,
    nodes: &[Node],
    fair: bool,
) -> anyhow::Result<(Value, usize)> {
    let started = Instant::now();
    let url = &nodes.first().context("no nodes")?.url;
    for polls in 1.. {
        let view = server::get_json(http, url, "/cluster")
            .await?
            .context("GET /cluster answered 404 (not a cluster?)")?;
        let versions = view["versions"].as_u64().unwrap_or(0) as usize;
        let alive = |n: &&Node| node_of(&view, n.id).is_some_and(|v| v["alive"] == true);
        let live = view["nodes"]
            .as_array()
            .map_or(0, |a| a.iter().filter(|n| n["alive"] == true).count());
        // `per_node_max` is the admin's; a team's view leaves it out.
        let share = view["per_node_max"]
            .as_u64()
            .map_or(versions.div_ceil(live.max(1)), |m| m as usize);
        let held: Vec<Vec<String>> = nodes
            .iter()
            .filter(alive)
            .map(|n| agents_of(&view, n.id))
            .collect();
        let all: BTreeSet<&String> = held.iter().flatten().collect();
        let spread = held.len() == nodes.len() && held.iter().all(|h| h.len() <= share);
        let spread = spread || !fair;
        if versions > 0 && all.len() >= versions && spread {
            return Ok((view, polls));
        }
        ensure!(
            started.elapsed() < PATIENCE,
            "the cluster did not settle within {PATIENCE:?}: {view}"
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
    bail!("the cluster did not settle")
}

/// The node's entry in a `GET /cluster` view.
fn node_of<'a>(view: &'a Value, id: &str) -> Option<&'a Value> {
    view["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["node_id"] == id)
}

/// The versions whose leases the node holds, as the view says.
fn agents_of(view: &Value, id: &str) -> Vec<String> {
    let agents = node_of(view, id).and_then(|n| n["agents"].as_array());
    let names = agents.into_iter().flatten().filter_map(Value::as_str);
    names.map(str::to_owned).collect()
}

/// Whether the node runs the agent of a version of the projection the probes read.
fn runs_probed(view: &Value, id: &str) -> bool {
    agents_of(view, id)
        .iter()
        .any(|a| a.split('@').next() == Some(NAME))
}

/// `count` probes, one at a time: an incident logged through node `i` (round robin),
/// its document read through node `i + 1` once projected (`view`: who runs what).
async fn probes(
    http: &reqwest::Client,
    nodes: &[Node],
    view: &Value,
    phase: &str,
    count: usize,
) -> anyhow::Result<Vec<Probe>> {
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let (writer, reader) = (&nodes[i % nodes.len()], &nodes[(i + 1) % nodes.len()]);
        let stream = format!("probe-{phase}-{i:05}");
        let body = server::append_body(Some(0), &Incident::new(i, 1).next_batch(1));
        let started = Instant::now();
        let appended = server::append(http, &writer.url, &stream, body)
            .await
            .with_context(|| format!("appending to {stream} through {}", writer.id))?;
        let append_ms = started.elapsed().as_secs_f64() * 1000.0;
        let path = format!(
            "/projections/{NAME}/docs/{stream}?after={}&timeout_ms={READ_TIMEOUT_MS}",
            appended.last_sequence
        );
        let doc = server::get_json(http, &reader.url, &path)
            .await
            .with_context(|| format!("reading {stream} through {}", reader.id))?
            .with_context(|| format!("{stream} has no document through {}", reader.id))?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        ensure!(
            doc["id"] == stream,
            "{stream}'s document is another's: {doc}"
        );
        let at_holder = runs_probed(view, reader.id);
        out.push(Probe {
            ms,
            append_ms,
            at_holder,
        });
    }
    Ok(out)
}

/// Records the probes' p50 and p99 as `cluster.{prefix}p50_ms` / `p99_ms`, and a
/// note on where the time went.
fn record(report: &mut Report, probes: Vec<Probe>, prefix: &str, what: &str) {
    let n = probes.len();
    let stats = |f: &dyn Fn(&Probe) -> Option<f64>| {
        let mut v: Vec<f64> = probes.iter().filter_map(f).collect();
        v.sort_by(f64::total_cmp);
        (pct(&v, 50), pct(&v, 99), v.len())
    };
    let (p50_ms, p99_ms, _) = stats(&|p| Some(p.ms));
    for (p, v) in [(50, p50_ms), (99, p99_ms)] {
        let label = format!("append -> visible elsewhere p{p}, {what} ({n} probes)");
        report.add("cluster", &format!("{prefix}p{p}_ms"), label, v, "ms");
    }
    let (append, _, _) = stats(&|p| Some(p.append_ms));
    let (holder, _, k) = stats(&|p| p.at_holder.then_some(p.ms));
    let (other, _, _) = stats(&|p| (!p.at_holder).then_some(p.ms));
    report.note(format!(
        "cluster, {what}: p50 of the append alone {append:.1} ms; of the whole probe \
         {holder:.1} ms when read through the node running {NAME}'s agent ({k} probes), \
         {other:.1} ms through the others ({} probes)",
        n - k
    ));
}

/// The `p`th percentile of sorted values (NaN for none).
fn pct(sorted: &[f64], p: usize) -> f64 {
    let i = (p * sorted.len()).div_ceil(100).max(1) - 1;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}
