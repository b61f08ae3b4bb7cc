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
    /// The backend it was measured on (`sqlite` or `postgres`).
    pub backend: &'static str,
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
    /// The backend of the run.
    pub backend: &'static str,
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
    /// The backend it was checked on.
    pub backend: &'static str,
    /// The workload it belongs to.
    pub workload: &'static str,
    /// What was checked and found right.
    pub what: String,
}

/// An observation, with the backend it was made on.
#[derive(Debug, Clone, Serialize)]
pub struct Note {
    /// The backend of the run.
    pub backend: &'static str,
    /// The observation.
    pub note: String,
}

/// Everything measured in one run.
#[derive(Debug)]
pub struct Report {
    started: Instant,
    /// The backend every figure was measured on (`sqlite` or `postgres`).
    pub backend: &'static str,
    /// Figures in the order measured.
    pub figures: Vec<Figure>,
    /// Figures not measured.
    pub skipped: Vec<Skipped>,
    /// Checks that passed.
    pub checks: Vec<Check>,
    /// Free-form observations (e.g. where a rebuild's time went).
    pub notes: Vec<Note>,
}

impl Report {
    /// An empty report of a run on `backend`; the run's clock starts now.
    pub fn new(backend: &'static str) -> Self {
        Self {
            started: Instant::now(),
            backend,
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
            backend: self.backend,
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
            backend: self.backend,
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
        self.checks.push(Check {
            backend: self.backend,
            workload,
            what,
        });
    }

    /// Records an observation.
    pub fn note(&mut self, text: impl Into<String>) {
        let text = text.into();
        eprintln!("  note: {text}");
        self.notes.push(Note {
            backend: self.backend,
            note: text,
        });
    }

    /// The value of a figure by key.
    pub fn value(&self, key: &str) -> Option<f64> {
        self.figures.iter().find(|f| f.key == key).map(|f| f.value)
    }

    /// The report as JSON, with the goals evaluated, the failed workloads and where
    /// the store was.
    pub fn to_json<'a, S: Serialize>(
        &'a self,
        scale: &'a S,
        goals: &'a [GoalResult],
        failures: &'a [String],
        store: String,
    ) -> impl Serialize + 'a {
        /// The report's JSON shape, fields in reading order.
        #[derive(Serialize)]
        struct Json<'a, S> {
            harness: &'static str,
            backend: &'static str,
            store: String,
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
            notes: &'a [Note],
        }
        Json {
            harness: "refract-bench",
            backend: self.backend,
            store,
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
        println!(
            "goals (2 cores, {}, release build, full scale):",
            self.backend
        );
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

/// The arrays of a report whose entries carry a backend label.
const LABELLED: [&str; 5] = ["goals", "figures", "skipped", "checks", "notes"];

/// One backend's run inside a merged report: its metadata and labelled entries.
struct Run {
    backend: String,
    meta: Value,
    entries: Vec<(&'static str, Vec<Value>)>,
}

/// The runs in one report file (a single run, or a merged report's runs). A report
/// from before the backend label is a SQLite run.
fn runs_of(report: &Value, path: &Path) -> anyhow::Result<Vec<Run>> {
    let obj = report
        .as_object()
        .with_context(|| format!("{} is not a report (not a JSON object)", path.display()))?;
    let label = |v: &Value, default: &str| {
        v.get("backend")
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_owned()
    };
    let entries_of = |backend: &str| -> Vec<(&'static str, Vec<Value>)> {
        LABELLED
            .iter()
            .map(|&field| {
                let items = obj
                    .get(field)
                    .and_then(Value::as_array)
                    .map(|a| a.as_slice())
                    .unwrap_or_default();
                let kept = items
                    .iter()
                    .filter(|item| match item.get("backend").and_then(Value::as_str) {
                        Some(b) => b == backend,
                        None => true,
                    })
                    .map(|item| match item {
                        Value::String(text) => json!({ "backend": backend, "note": text }),
                        Value::Object(o) => {
                            let mut o = o.clone();
                            o.entry("backend").or_insert_with(|| json!(backend));
                            Value::Object(o)
                        }
                        other => other.clone(),
                    })
                    .collect();
                (field, kept)
            })
            .collect()
    };
    if let Some(runs) = obj.get("runs").and_then(Value::as_array) {
        return Ok(runs
            .iter()
            .map(|meta| {
                let backend = label(meta, "sqlite");
                Run {
                    entries: entries_of(&backend),
                    backend,
                    meta: meta.clone(),
                }
            })
            .collect());
    }
    let backend = label(report, "sqlite");
    let field = |k: &str| obj.get(k).cloned().unwrap_or(Value::Null);
    let meta = json!({
        "backend": backend,
        "store": field("store"),
        "date": field("date"),
        "commit": field("commit"),
        "build": field("build"),
        "scale": field("scale"),
        "elapsed_s": field("elapsed_s"),
        "failures": field("failures"),
    });
    Ok(vec![Run {
        entries: entries_of(&backend),
        backend,
        meta,
    }])
}

/// Merges report files into one: a run per backend (a later file's run of a backend
/// replaces an earlier one's), every goal, figure, check and note labelled with its
/// backend, and the first file's machine and scale.
pub fn merge(paths: &[std::path::PathBuf]) -> anyhow::Result<Merged> {
    let mut runs: Vec<Run> = Vec::new();
    let mut first: Option<Value> = None;
    for path in paths {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let report: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        for run in runs_of(&report, path)? {
            runs.retain(|r| r.backend != run.backend);
            runs.push(run);
        }
        first.get_or_insert(report);
    }
    let first = first.context("nothing to merge")?;
    let pick = |k: &str| first.get(k).cloned().unwrap_or(Value::Null);
    let latest = |k: &str| {
        runs.iter()
            .filter_map(|r| r.meta.get(k).and_then(Value::as_str))
            .max()
            .map_or(Value::Null, |s| json!(s))
    };
    let mut out = serde_json::Map::new();
    out.insert("harness".into(), json!("refract-bench"));
    out.insert(
        "backends".into(),
        json!(runs.iter().map(|r| r.backend.clone()).collect::<Vec<_>>()),
    );
    out.insert("date".into(), latest("date"));
    out.insert("scale".into(), pick("scale"));
    out.insert("build".into(), pick("build"));
    out.insert("machine".into(), pick("machine"));
    out.insert(
        "runs".into(),
        Value::Array(runs.iter().map(|r| r.meta.clone()).collect()),
    );
    for field in LABELLED {
        let all: Vec<Value> = runs
            .iter()
            .flat_map(|r| {
                r.entries
                    .iter()
                    .filter(|(f, _)| *f == field)
                    .flat_map(|(_, items)| items.iter().cloned())
            })
            .collect();
        out.insert(field.into(), Value::Array(all));
    }
    Ok(Merged(Value::Object(out)))
}

/// A merged report, written with its fields in reading order.
pub struct Merged(Value);

/// The order of the merged report's fields, and of its entries' fields.
const ORDER: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "harness", "backends", "date", "scale", "build", "machine", "runs", "goals", "figures",
            "skipped", "checks", "notes",
        ],
    ),
    (
        "runs",
        &[
            "backend",
            "store",
            "date",
            "commit",
            "build",
            "scale",
            "elapsed_s",
            "failures",
        ],
    ),
    (
        "goals",
        &[
            "backend", "goal", "key", "target", "unit", "measured", "met", "caveat",
        ],
    ),
    (
        "figures",
        &["backend", "workload", "key", "label", "value", "unit"],
    ),
    ("skipped", &["backend", "workload", "key", "reason"]),
    ("checks", &["backend", "workload", "what"]),
    ("notes", &["backend", "note"]),
];

/// One JSON object written with `order`'s keys first (its entries' objects in
/// their own order, by the key they are under), the rest after.
struct Ordered<'a> {
    value: &'a Value,
    order: &'static [&'static str],
}

impl Ordered<'_> {
    fn order_of(key: &str) -> &'static [&'static str] {
        ORDER
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(&[], |(_, o)| o)
    }
}

impl Serialize for Ordered<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        /// A list whose objects follow `order`.
        struct List<'a>(&'a [Value], &'static [&'static str]);
        impl Serialize for List<'_> {
            fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
                let mut seq = ser.serialize_seq(Some(self.0.len()))?;
                for v in self.0 {
                    seq.serialize_element(&Ordered {
                        value: v,
                        order: self.1,
                    })?;
                }
                seq.end()
            }
        }
        let Value::Object(map) = self.value else {
            return self.value.serialize(ser);
        };
        let mut out = ser.serialize_map(Some(map.len()))?;
        let first = self.order.iter().filter_map(|k| map.get_key_value(*k));
        let rest = map
            .iter()
            .filter(|(k, _)| !self.order.contains(&k.as_str()));
        for (k, v) in first.chain(rest) {
            match v {
                Value::Array(items)
                    if !Self::order_of(k).is_empty() && self.order == Self::order_of("") =>
                {
                    out.serialize_entry(k, &List(items, Self::order_of(k)))?
                }
                _ => out.serialize_entry(k, v)?,
            }
        }
        out.end()
    }
}

impl Serialize for Merged {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        Ordered {
            value: &self.0,
            order: Ordered::order_of(""),
        }
        .serialize(ser)
    }
}
