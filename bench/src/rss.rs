//! Workload 7: peak memory of the real daemon (`refract serve`) while it rebuilds the
//! dataset: deploy incident-details over HTTP, wait until it has caught up, read the
//! process's high-water mark (VmHWM) from /proc.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::dataset::Dataset;
use crate::report::Report;
use crate::server;

/// Records the figure as skipped when there is no binary to run; true if so.
pub fn skip_without_binary(report: &mut Report, bin: &Path) -> bool {
    if bin.exists() {
        return false;
    }
    report.skip(
        "rss",
        "peak_mib",
        format!(
            "no refract binary at {} (build it with `cargo build --release -p refract`, or pass --refract-bin)",
            bin.display()
        ),
    );
    true
}

/// Runs the daemon binary on the untouched copy of the dataset.
pub async fn run(report: &mut Report, ds: &Dataset, bin: &Path, dir: &Path) -> anyhow::Result<()> {
    let data = ds
        .pristine
        .as_ref()
        .context("no copy of the dataset was made")?;
    let log_path = dir.join("daemon.log");
    let mut cmd = Command::new(bin);
    cmd.arg("serve").arg("--data-dir").arg(&data.data_dir);
    if let Some(url) = &data.url {
        cmd.arg("--store").arg(url);
    }
    let mut child = cmd
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path)?)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let result = measure(report, ds, bin, &mut child, &log_path).await;
    stop(&mut child).await;
    if result.is_err() {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        eprintln!("daemon log (last lines):");
        for line in tail.into_iter().rev() {
            eprintln!("  {line}");
        }
    }
    result
}

async fn measure(
    report: &mut Report,
    ds: &Dataset,
    bin: &Path,
    child: &mut Child,
    log: &Path,
) -> anyhow::Result<()> {
    let pid = child.id().context("the daemon exited at once")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let url = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(url) = line.strip_prefix("refract listening on ") {
                return anyhow::Ok(url.trim().to_owned());
            }
        }
        bail!("the daemon exited before it listened")
    })
    .await
    .context("the daemon did not start listening within 120 s")??;
    // Keep draining stdout so the daemon never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let http = reqwest::Client::new();
    let idle = status_kib(pid, "VmRSS")?;
    let wasm = std::fs::read(refract_test_artifacts::INCIDENT_DETAILS_V1)?;
    let started = Instant::now();
    server::deploy(&http, &url, wasm).await?;
    let mut peak_seen = idle;
    let status = loop {
        peak_seen = peak_seen.max(status_kib(pid, "VmRSS")?);
        if let Some(p) = server::projection_status(&http, &url, "incident-details").await? {
            if p["status"] != "running" {
                bail!("incident-details stopped: {p}");
            }
            if p["position"].as_i64().is_some_and(|pos| pos >= ds.total) {
                break p;
            }
        }
        ensure!(
            started.elapsed() < Duration::from_secs(3600),
            "the daemon did not catch up within an hour"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let secs = started.elapsed().as_secs_f64();
    let hwm = status_kib(pid, "VmHWM")?;
    ensure!(
        status["events_applied"].as_i64() == Some(ds.total),
        "the daemon applied {} events of {}",
        status["events_applied"],
        ds.total
    );
    let mib = |kib: u64| kib as f64 / 1024.0;
    report.add(
        "rss",
        "peak_mib",
        format!("daemon peak RSS (VmHWM), {} events", ds.total),
        mib(hwm),
        "MiB",
    );
    report.add(
        "rss",
        "idle_mib",
        "daemon RSS before the deploy",
        mib(idle),
        "MiB",
    );
    report.add(
        "rss",
        "daemon_rebuild_events_per_s",
        "daemon binary: deploy -> caught up",
        ds.total as f64 / secs,
        "events/s",
    );
    match caught_up_line(log).await {
        Some(fields) => {
            for (key, label) in [
                ("events_per_s", "daemon agent's own rate (its log)"),
                ("wall_ms", "daemon agent's wall time (its log)"),
            ] {
                if let Some(v) = fields.iter().find(|(k, _)| k == key) {
                    let unit = if key == "wall_ms" { "ms" } else { "events/s" };
                    report.add("rss", &format!("daemon_{key}"), label, v.1, unit);
                }
            }
        }
        None => report.note("the daemon's log has no \"caught up\" line for incident-details"),
    }
    report.check(
        "rss",
        format!(
            "the daemon ({}) applied all {} events",
            bin.display(),
            ds.total
        ),
    );
    Ok(())
}

/// The numeric fields of the daemon's "caught up" log line for incident-details
/// (`key=value` pairs), waiting up to two seconds for it.
async fn caught_up_line(log: &Path) -> Option<Vec<(String, f64)>> {
    for _ in 0..40 {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let line = text
            .lines()
            .rev()
            .find(|l| l.contains("caught up") && l.contains("projection=incident-details@v1"));
        if let Some(line) = line {
            let fields = line
                .split_whitespace()
                .filter_map(|w| w.split_once('='))
                .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
                .collect();
            return Some(fields);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// A `kB` line of /proc/<pid>/status, in KiB.
fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// SIGTERM (a clean shutdown), then SIGKILL if it lingers.
async fn stop(child: &mut Child) {
    if let Some(pid) = child.id() {
        // SAFETY: signals our own child process by its id.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
    }
    if tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}
