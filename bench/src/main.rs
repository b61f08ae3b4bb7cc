//! `refract-bench`: measures refract as users run it (append, rebuild, raw scan,
//! latency, hot swap, guest calls, daemon memory, inline projections, a 3-node
//! cluster), writes a JSON report and prints a table next to the goals. `--scale
//! smoke` runs in well under a minute for CI; `--scale full` is the by-hand run
//! behind `bench/results.json`.
//! `--store postgres://...` runs every workload on a database of its own on that
//! PostgreSQL server instead of a SQLite file; `--merge` puts runs of both backends in
//! one file.

mod append;
mod backend;
mod capture;
mod cluster;
mod dataset;
mod goals;
mod guest_calls;
mod helpdesk;
mod hotswap;
mod inline;
mod latency;
mod native;
mod rebuild;
mod report;
mod rss;
mod server;
mod wide;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use refract::runtime::{Limits, LoadedComponent, Runtime};
use serde::Serialize;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use backend::Backend;
use capture::Capture;
use report::Report;

/// How big a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ScaleName {
    /// Small and quick (CI; also in a dev build).
    Smoke,
    /// The sizes (by hand, release build).
    Full,
}

/// The workloads, for `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Workload {
    Append,
    Rebuild,
    Scan,
    Latency,
    Hotswap,
    Guest,
    Rss,
    Wide,
    Inline,
    Cluster,
}

/// Benchmarks refract and writes a JSON report.
#[derive(Debug, Parser)]
#[command(name = "refract-bench", about)]
struct Args {
    /// How big a run: smoke (CI) or full (the sizes).
    #[arg(long, value_enum, default_value = "smoke")]
    scale: ScaleName,
    /// Where the JSON report goes [default: bench/results.json for full,
    /// target/bench-smoke.json for smoke, under the workspace].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run only these workloads (comma separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Workload>,
    /// The `refract` binary for the memory and cluster workloads [default:
    /// target/release/refract].
    #[arg(long)]
    refract_bin: Option<PathBuf>,
    /// A PostgreSQL server URL (postgres://user@host:port/db): each workload runs on a
    /// fresh database of its own there (created, then dropped) [default: SQLite files].
    #[arg(long)]
    store: Option<String>,
    /// Events appended one at a time per append shape [default: the scale's].
    #[arg(long)]
    append_singles: Option<usize>,
    /// Events appended in batches of 100 per append shape [default: the scale's].
    #[arg(long)]
    append_batched: Option<usize>,
    /// Merge these reports (comma separated; a later run of a backend replaces an
    /// earlier one) into `--out` and run nothing.
    #[arg(long, value_delimiter = ',')]
    merge: Vec<PathBuf>,
}

/// The sizes of one scale.
#[derive(Debug, Clone, Serialize)]
pub struct Scale {
    /// `smoke` or `full`.
    pub name: &'static str,
    /// Streams in the rebuild dataset.
    pub streams: usize,
    /// Events per stream in the rebuild dataset.
    pub per_stream: usize,
    /// Events per append while preparing the dataset.
    pub dataset_chunk: usize,
    /// Events appended one at a time, per append shape.
    pub append_singles: usize,
    /// Events appended in batches of 100, per append shape.
    pub append_batched: usize,
    /// Runs of each rebuild and scan (the best counts).
    pub repeats: usize,
    /// The latency workload's load, events/s.
    pub latency_rate: f64,
    /// How long the latency load runs, seconds.
    pub latency_secs: f64,
    /// Streams the latency load appends to.
    pub latency_streams: usize,
    /// Deploys compiling from wasm.
    pub hotswap_cold: usize,
    /// Deploys from the artifact cache.
    pub hotswap_warm: usize,
    /// Events sliced and applied per page size.
    pub guest_events: usize,
    /// Fresh guests instantiated.
    pub instantiations: usize,
    /// Streams of the wide workload.
    pub wide_streams: usize,
    /// Events of the wide workload.
    pub wide_events: usize,
    /// Single-event appends of the inline workload, per lifecycle and client count.
    pub inline_appends: usize,
    /// Append-then-read probes of the inline workload, per lifecycle.
    pub inline_probes: usize,
    /// Append-then-read-elsewhere probes of the cluster workload on 3 nodes.
    pub cluster_probes: usize,
    /// The same probes on the 2 nodes left after a kill.
    pub cluster_probes_after: usize,
}

impl Scale {
    fn of(name: ScaleName) -> Self {
        match name {
            ScaleName::Smoke => Self {
                name: "smoke",
                streams: 1_000,
                per_stream: 20,
                dataset_chunk: 10,
                append_singles: 400,
                append_batched: 4_000,
                repeats: 1,
                latency_rate: 2_000.0,
                latency_secs: 2.0,
                latency_streams: 200,
                hotswap_cold: 1,
                hotswap_warm: 2,
                guest_events: 10_000,
                instantiations: 10,
                wide_streams: 3_000,
                wide_events: 10_000,
                inline_appends: 400,
                inline_probes: 100,
                cluster_probes: 50,
                cluster_probes_after: 20,
            },
            ScaleName::Full => Self {
                name: "full",
                streams: 10_000,
                per_stream: 100,
                dataset_chunk: 10,
                append_singles: 20_000,
                append_batched: 200_000,
                repeats: 2,
                latency_rate: 2_000.0,
                latency_secs: 10.0,
                latency_streams: 1_000,
                hotswap_cold: 3,
                hotswap_warm: 5,
                guest_events: 100_000,
                instantiations: 50,
                wide_streams: 300_000,
                wide_events: 1_000_000,
                inline_appends: 5_000,
                inline_probes: 1_000,
                cluster_probes: 1_000,
                cluster_probes_after: 100,
            },
        }
    }

    /// Events appended for one append shape.
    pub fn total_for_batch(&self, batch: usize) -> usize {
        if batch == 1 {
            self.append_singles
        } else {
            self.append_batched
        }
    }
}

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_owned()
}

/// Reads a component file and loads it (compile or artifact cache) on a blocking thread.
pub async fn load_component(runtime: &Runtime, path: &str) -> anyhow::Result<LoadedComponent> {
    let wasm = std::fs::read(path).with_context(|| format!("reading {path}"))?;
    let rt = runtime.clone();
    Ok(tokio::task::spawn_blocking(move || rt.load(&wasm)).await??)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Args::parse()).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs the selected workloads; false if any failed.
async fn run(args: Args) -> anyhow::Result<bool> {
    let capture = Capture::default();
    let refract_logs =
        tracing_subscriber::filter::Targets::new().with_target("refract", tracing::Level::INFO);
    tracing_subscriber::registry()
        .with(capture.clone().with_filter(refract_logs))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(
                    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
                ),
        )
        .init();

    let mut scale = Scale::of(args.scale);
    if let Some(n) = args.append_singles {
        scale.append_singles = n.max(8);
    }
    if let Some(n) = args.append_batched {
        scale.append_batched = n.max(800);
    }
    let root = workspace_root();
    let out = args.out.clone().unwrap_or_else(|| match args.scale {
        ScaleName::Full => root.join("bench").join("results.json"),
        ScaleName::Smoke => root.join("target").join("bench-smoke.json"),
    });
    if !args.merge.is_empty() {
        let merged = report::merge(&args.merge)?;
        report::write(&out, &merged)?;
        println!(
            "merged {} report(s) into {}",
            args.merge.len(),
            out.display()
        );
        return Ok(true);
    }
    let backend = Backend::from_arg(args.store.as_deref())?;
    let bin = args.refract_bin.clone().unwrap_or_else(|| {
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
        target.join("release").join("refract")
    });
    let wants = |w: Workload| args.only.is_empty() || args.only.contains(&w);
    let tmp = tempfile::Builder::new()
        .prefix("refract-bench-")
        .tempdir()?;
    let dir = tmp.path();
    eprintln!(
        "refract-bench: scale {}, {} build, {}, data in {}",
        scale.name,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        backend.describe(),
        dir.display()
    );
    let runtime = Runtime::new(Some(dir.join("bench-cache")), Limits::default())?;
    let mut report = Report::new(backend.label());
    let mut failures: Vec<String> = Vec::new();
    let mut outcome = |name: &str, r: anyhow::Result<()>| {
        if let Err(e) = r {
            eprintln!("FAILED {name}: {e:#}");
            failures.push(format!("{name}: {e:#}"));
        }
    };

    if wants(Workload::Guest) {
        eprintln!("== guest call overhead");
        outcome(
            "guest",
            guest_calls::run(&mut report, &scale, &runtime).await,
        );
    }
    if wants(Workload::Hotswap) {
        eprintln!("== hot swap");
        outcome(
            "hotswap",
            hotswap::run(&mut report, &scale, dir, &capture, &backend).await,
        );
    }
    if wants(Workload::Append) {
        eprintln!("== append");
        outcome(
            "append",
            append::run(&mut report, &scale, dir, &backend).await,
        );
    }
    if wants(Workload::Latency) {
        eprintln!("== latency");
        outcome(
            "latency",
            latency::run(&mut report, &scale, dir, &backend).await,
        );
    }
    if wants(Workload::Inline) {
        eprintln!("== inline");
        outcome(
            "inline",
            inline::run(&mut report, &scale, dir, &backend).await,
        );
    }
    if wants(Workload::Cluster) {
        eprintln!("== cluster");
        outcome(
            "cluster",
            cluster::run(&mut report, &scale, dir, &backend, &bin).await,
        );
    }
    if wants(Workload::Wide) {
        eprintln!("== wide");
        outcome(
            "wide",
            wide::run(&mut report, &scale, dir, &runtime, &backend).await,
        );
    }
    let (scan, rebuild) = (wants(Workload::Scan), wants(Workload::Rebuild));
    let rss = wants(Workload::Rss) && !rss::skip_without_binary(&mut report, &bin);
    if scan || rebuild || rss {
        eprintln!("== dataset");
        match dataset::prepare(&mut report, &scale, dir, &backend, rss).await {
            Ok(ds) => {
                if scan || rebuild {
                    eprintln!("== scan / rebuild");
                    let r = rebuild::run(
                        &mut report,
                        &scale,
                        &ds,
                        &runtime,
                        &capture,
                        (scan, rebuild),
                    )
                    .await;
                    outcome("rebuild", r);
                }
                if rss {
                    eprintln!("== daemon memory");
                    outcome("rss", rss::run(&mut report, &ds, &bin, dir).await);
                }
                ds.finish().await;
            }
            Err(e) => outcome("dataset", Err(e)),
        }
    }

    let goals = goals::evaluate(&report);
    let json = report.to_json(&scale, &goals, &failures, backend.describe());
    report::write(&out, &json)?;
    report.print_table(&goals, scale.name);
    println!("\nreport: {}", out.display());
    if !failures.is_empty() {
        eprintln!("\n{} workload(s) FAILED:", failures.len());
        for f in &failures {
            eprintln!("  {f}");
        }
    }
    Ok(failures.is_empty())
}
