//! The report: every figure with its unit, the machine, the date and the scale,
//! written as JSON and printed as a table next to the goals.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;
use serde_json::{Value, json};

use crate::goals::{self, GoalResult};

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// The workload it belongs to.
    pub workload: &'static str,
    /// A stable key (`workload.what`).
    pub key: String,
    /// What it is, for a person.
    pub label: String,
    /// The number.
    pub value: f64,
    /// Its unit.
    pub unit: &'static str,
}

/// A figure that could not be measured, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// The workload it belongs to.
    pub workload: &'static str,
    /// Its key.
    pub key: String,
    /// Why it was skipped.
    pub reason: String,
}

/// A correctness check that passed (a failing one aborts the run).
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// The workload it belongs to.
    pub workload: &'static str,
    /// What was checked and found right.
    pub what: String,
}

/// Everything measured in one run.
#[derive(Debug)]
pub struct Report {
    started: Instant,
    /// Figures in the order measured.
    pub figures: Vec<Figure>,
    /// Figures not measured.
    pub skipped: Vec<Skipped>,
    /// Checks that passed.
    pub checks: Vec<Check>,
    /// Free-form observations (e.g. where a rebuild's time went).
    pub notes: Vec<String>,
}

impl Default for Report {
    fn default() -> Self {
        Self::new()
    }
}

impl Report {
    /// An empty report; the run's clock starts now.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            figures: Vec::new(),
            skipped: Vec::new(),
            checks: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Records a figure.
    pub fn add(
        &mut self,
        workload: &'static str,
        key: &str,
        label: impl Into<String>,
        value: f64,
        unit: &'static str,
    ) {
        let f = Figure {
            workload,
            key: format!("{workload}.{key}"),
            label: label.into(),
            value: round(value, 3),
            unit,
        };
        eprintln!("  {:<48} {:>14} {}", f.label, fmt_value(f.value), f.unit);
        self.figures.push(f);
    }

    /// Records a figure that could not be measured.
    pub fn skip(&mut self, workload: &'static str, key: &str, reason: impl Into<String>) {
        let s = Skipped {
            workload,
            key: format!("{workload}.{key}"),
            reason: reason.into(),
        };
        eprintln!("  skipped {}: {}", s.key, s.reason);
        self.skipped.push(s);
    }

    /// Records a check that passed.
    pub fn check(&mut self, workload: &'static str, what: impl Into<String>) {
        let what = what.into();
        eprintln!("  ok: {what}");
        self.checks.push(Check { workload, what });
    }

    /// Records an observation.
    pub fn note(&mut self, text: impl Into<String>) {
        let text = text.into();
        eprintln!("  note: {text}");
        self.notes.push(text);
    }

    /// The value of a figure by key.
    pub fn value(&self, key: &str) -> Option<f64> {
        self.figures.iter().find(|f| f.key == key).map(|f| f.value)
    }

    /// The report as JSON, with the goals evaluated and the failed workloads.
    pub fn to_json<'a, S: Serialize>(
        &'a self,
        scale: &'a S,
        goals: &'a [GoalResult],
        failures: &'a [String],
    ) -> impl Serialize + 'a {
        /// The report's JSON shape, fields in reading order.
        #[derive(Serialize)]
        struct Json<'a, S> {
            harness: &'static str,
            date: String,
            scale: &'a S,
            build: &'static str,
            machine: Value,
            commit: Option<String>,
            elapsed_s: f64,
            failures: &'a [String],
            goals: &'a [GoalResult],
            figures: &'a [Figure],
            skipped: &'a [Skipped],
            checks: &'a [Check],
            notes: &'a [String],
        }
        Json {
            harness: "refract-bench",
            date: now_rfc3339(),
            scale,
            build: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            machine: machine(),
            commit: commit(),
            elapsed_s: round(self.started.elapsed().as_secs_f64(), 1),
            failures,
            goals,
            figures: &self.figures,
            skipped: &self.skipped,
            checks: &self.checks,
            notes: &self.notes,
        }
    }

    /// Prints the table: every figure, with its goal and whether it is met.
    pub fn print_table(&self, goals: &[GoalResult], scale: &str) {
        println!();
        println!(
            "{:<10} {:<48} {:>14} {:<9} {:<14} met",
            "workload", "figure", "value", "unit", "goal"
        );
        println!("{}", "-".repeat(104));
        let mut last = "";
        for f in &self.figures {
            let workload = if f.workload == last { "" } else { f.workload };
            last = f.workload;
            let goal = goals.iter().find(|g| g.key == f.key);
            let (target, met) = match goal {
                Some(g) => (g.target.clone(), goals::mark(g.met)),
                None => (String::new(), ""),
            };
            println!(
                "{:<10} {:<48} {:>14} {:<9} {:<14} {}",
                workload,
                f.label,
                fmt_value(f.value),
                f.unit,
                target,
                met
            );
        }
        for s in &self.skipped {
            println!(
                "{:<10} {:<48} {:>14}  ({})",
                s.workload, s.key, "skipped", s.reason
            );
        }
        println!();
        println!("goals (2 cores, SQLite, release build, full scale):");
        let build = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        if scale != "full" || build != "release" {
            println!("  (this run: {scale} scale, {build} build; the marks are indicative only)");
        }
        for g in goals {
            let measured = g
                .measured
                .map(|v| format!("{} {}", fmt_value(v), g.unit))
                .unwrap_or_else(|| {
                    let skipped = self.skipped.iter().any(|s| s.key == g.key);
                    if skipped { "skipped" } else { "not measured" }.into()
                });
            println!("  {:<9} {:<58} {}", goals::mark(g.met), g.goal, measured);
        }
    }
}

/// Writes the JSON report, creating the directory.
pub fn write(path: &Path, report: &impl Serialize) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(report)? + "\n";
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// A number for the table: thousands separated when large, else a few digits.
pub fn fmt_value(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v.abs() >= 1000.0 {
        let n = v.round() as i64;
        let digits = n.unsigned_abs().to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        if n < 0 { format!("-{out}") } else { out }
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// Rounds to `places` decimals, for JSON that reads well.
pub fn round(v: f64, places: i32) -> f64 {
    let m = 10f64.powi(places);
    (v * m).round() / m
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The CPU model, core count, memory and kernel.
fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: Option<u64> = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok());
    json!({
        "cpu_model": cpu,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "memory_mib": mem_kib.map(|k| k / 1024),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
    })
}

/// The workspace's git commit, marked `-dirty` when the tree has changes.
fn commit() -> Option<String> {
    let root = crate::workspace_root();
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(&root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let head = git(&["rev-parse", "--short=12", "HEAD"])?;
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{head}-dirty") } else { head })
}
