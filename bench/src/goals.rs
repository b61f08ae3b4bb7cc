//! The issues' goals (2 cores, release build), per backend, checked against the figures.

use serde::Serialize;

use crate::report::{Report, fmt_value};

/// Which way a goal points.
#[derive(Debug, Clone, Copy)]
enum Bound {
    AtMost,
    AtLeast,
}

/// One goal: a figure's key and its bound.
struct Goal {
    text: &'static str,
    key: &'static str,
    bound: Bound,
    limit: f64,
    unit: &'static str,
}

/// The goals on SQLite.
const GOALS: &[Goal] = &[
    Goal {
        text: "wasm/native rebuild time ratio <= 1.2",
        key: "rebuild.wasm_native_ratio",
        bound: Bound::AtMost,
        limit: 1.2,
        unit: "x",
    },
    Goal {
        text: "rebuild >= 250,000 events/s",
        key: "rebuild.wasm_events_per_s",
        bound: Bound::AtLeast,
        limit: 250_000.0,
        unit: "events/s",
    },
    Goal {
        text: "rebuild >= 50% of the raw scan rate",
        key: "scan.rebuild_over_scan",
        bound: Bound::AtLeast,
        limit: 0.5,
        unit: "x",
    },
    Goal {
        text: "batched append (library) >= 150,000 events/s",
        key: "append.library_batch_best",
        bound: Bound::AtLeast,
        limit: 150_000.0,
        unit: "events/s",
    },
    Goal {
        text: "batched append over HTTP within 2x of the library",
        key: "append.library_over_http_batch",
        bound: Bound::AtMost,
        limit: 2.0,
        unit: "x",
    },
    Goal {
        text: "append -> visible p99 <= 20 ms at 2,000 events/s",
        key: "latency.p99_ms",
        bound: Bound::AtMost,
        limit: 20.0,
        unit: "ms",
    },
    Goal {
        text: "hot swap from wasm <= 200 ms",
        key: "hotswap.from_wasm_ms",
        bound: Bound::AtMost,
        limit: 200.0,
        unit: "ms",
    },
    Goal {
        text: "hot swap from the artifact cache <= 20 ms",
        key: "hotswap.from_cache_ms",
        bound: Bound::AtMost,
        limit: 20.0,
        unit: "ms",
    },
    Goal {
        text: "rebuild peak RSS <= 200 MiB",
        key: "rss.peak_mib",
        bound: Bound::AtMost,
        limit: 200.0,
        unit: "MiB",
    },
];

/// The goals on PostgreSQL (issue 13): lower rates and a longer p99 than SQLite's,
/// the same wasm/native ratio.
const GOALS_PG: &[Goal] = &[
    Goal {
        text: "wasm/native rebuild time ratio <= 1.2",
        key: "rebuild.wasm_native_ratio",
        bound: Bound::AtMost,
        limit: 1.2,
        unit: "x",
    },
    Goal {
        text: "rebuild >= 150,000 events/s",
        key: "rebuild.wasm_events_per_s",
        bound: Bound::AtLeast,
        limit: 150_000.0,
        unit: "events/s",
    },
    Goal {
        text: "batched append (library) >= 80,000 events/s",
        key: "append.library_batch_best",
        bound: Bound::AtLeast,
        limit: 80_000.0,
        unit: "events/s",
    },
    Goal {
        text: "append -> visible p99 <= 30 ms at 2,000 events/s",
        key: "latency.p99_ms",
        bound: Bound::AtMost,
        limit: 30.0,
        unit: "ms",
    },
];

/// A goal with what was measured.
#[derive(Debug, Clone, Serialize)]
pub struct GoalResult {
    /// The backend it was measured on (`sqlite` or `postgres`).
    pub backend: &'static str,
    /// The goal, in words.
    pub goal: &'static str,
    /// The figure it is judged on.
    pub key: &'static str,
    /// The bound, e.g. `<= 1.2`.
    pub target: String,
    /// The figure's unit.
    pub unit: &'static str,
    /// The figure, if measured.
    pub measured: Option<f64>,
    /// Met, not met, or unknown (not measured).
    pub met: Option<bool>,
    /// Why a measured figure does not count, if it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caveat: Option<String>,
}

/// Judges every goal of the report's backend on its figures.
pub fn evaluate(report: &Report) -> Vec<GoalResult> {
    let goals = match report.backend {
        "postgres" => GOALS_PG,
        _ => GOALS,
    };
    goals
        .iter()
        .map(|g| {
            let measured = report.value(g.key);
            let mut met = measured.map(|v| match g.bound {
                Bound::AtMost => v <= g.limit,
                Bound::AtLeast => v >= g.limit,
            });
            let mut caveat = None;
            // The latency goal holds only if the load really was 2,000 events/s.
            if g.key == "latency.p99_ms"
                && let (Some(rate), Some(want)) = (
                    report.value("latency.achieved_events_per_s"),
                    report.value("latency.target_events_per_s"),
                )
                && rate < want * 0.95
            {
                met = Some(false);
                caveat = Some(format!(
                    "the load reached only {} of {} events/s",
                    fmt_value(rate),
                    fmt_value(want)
                ));
            }
            let sign = match g.bound {
                Bound::AtMost => "<=",
                Bound::AtLeast => ">=",
            };
            GoalResult {
                backend: report.backend,
                goal: g.text,
                key: g.key,
                target: if g.limit >= 1000.0 {
                    format!("{sign} {}", fmt_value(g.limit))
                } else {
                    format!("{sign} {}", g.limit)
                },
                unit: g.unit,
                measured,
                met,
                caveat,
            }
        })
        .collect()
}

/// How a goal's state reads in the table.
pub fn mark(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "NOT MET",
        None => "-",
    }
}
