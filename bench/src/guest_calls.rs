//! Workload 6: the cost of one page's `slice` + `apply` by page size, wasm against
//! native, and the cost of instantiating a component.
//!
//! Pages come from the help-desk generator, documents travel as JSON between pages as
//! in the agent (a map of the latest bodies), and only the two calls are timed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use incident_details::IncidentDetailsProjection;
use refract::daemon::PageProjector;
use refract::runtime::{DocChange, DocInput, Event, Guest, LoadedComponent, Runtime};

use crate::helpdesk::recorded;
use crate::native::Native;
use crate::report::Report;
use crate::{Scale, load_component};

/// The page sizes measured.
pub const PAGE_SIZES: [usize; 4] = [1, 100, 1000, 5000];

/// One figure to report: (key, label, value, unit).
type Row = (String, String, f64, &'static str);

/// Measures both projectors at every page size, then instantiation.
pub async fn run(report: &mut Report, scale: &Scale, runtime: &Runtime) -> anyhow::Result<()> {
    let loaded = load_component(runtime, refract_test_artifacts::INCIDENT_DETAILS_V1).await?;
    let (events, runs) = (scale.guest_events, scale.instantiations);
    let rows = tokio::task::spawn_blocking(move || measure(&loaded, events, runs)).await??;
    for (key, label, value, unit) in rows {
        report.add("guest", &key, label, value, unit);
    }
    Ok(())
}

fn measure(loaded: &LoadedComponent, events: usize, runs: usize) -> anyhow::Result<Vec<Row>> {
    let per_stream = 100;
    let streams = events.div_ceil(per_stream).max(1);
    let all = recorded("incident", streams, per_stream, 10);
    let mut rows = Vec::new();
    for size in PAGE_SIZES {
        // At least three pages, going round the events again if needed.
        let pages: Vec<&[Event]> = all.chunks(size).collect();
        let count = pages.len().max(3);
        let mut wasm = Guest::new(loaded, "incident-details@v1".into());
        let mut native = Native::<IncidentDetailsProjection>::new("incident-details-native@v1");
        let w = time_pages(&mut wasm, &pages, count)?;
        let n = time_pages(&mut native, &pages, count)?;
        let per_page = |d: Duration| d.as_secs_f64() * 1e6 / count as f64;
        let per_event = |d: Duration| d.as_secs_f64() * 1e9 / (count * size) as f64;
        rows.push((
            format!("wasm_page{size}_us"),
            format!("wasm slice+apply, page of {size}"),
            per_page(w),
            "us/page",
        ));
        rows.push((
            format!("native_page{size}_us"),
            format!("native slice+apply, page of {size}"),
            per_page(n),
            "us/page",
        ));
        rows.push((
            format!("wasm_page{size}_ns_per_event"),
            format!("wasm, page of {size}, per event"),
            per_event(w),
            "ns/event",
        ));
        rows.push((
            format!("native_page{size}_ns_per_event"),
            format!("native, page of {size}, per event"),
            per_event(n),
            "ns/event",
        ));
        rows.push((
            format!("ratio_page{size}"),
            format!("wasm / native, page of {size}"),
            w.as_secs_f64() / n.as_secs_f64(),
            "x",
        ));
    }
    let (cold, warm) = instantiation(loaded, runs)?;
    rows.push((
        "describe_fresh_us".into(),
        format!("describe on a fresh Guest (median of {runs})"),
        cold,
        "us",
    ));
    rows.push((
        "describe_warm_us".into(),
        "describe on a warm Guest".into(),
        warm,
        "us",
    ));
    rows.push((
        "instantiation_us".into(),
        "instantiation (fresh - warm)".into(),
        cold - warm,
        "us",
    ));
    Ok(rows)
}

/// Slices and applies `count` pages (cycling through `pages`) after one untimed warm-up
/// page; returns the time spent in the two calls.
fn time_pages(
    p: &mut dyn PageProjector,
    pages: &[&[Event]],
    count: usize,
) -> anyhow::Result<Duration> {
    let mut docs: HashMap<String, String> = HashMap::new();
    let mut spent = Duration::ZERO;
    for i in 0..=count {
        let page = pages[i % pages.len()];
        if i % pages.len() == 0 {
            // Going round again: the documents start over, as the events do.
            docs.clear();
        }
        let t = Instant::now();
        let slices = p.slice(page)?;
        let sliced = t.elapsed();
        let inputs: Vec<DocInput> = slices
            .iter()
            .map(|s| DocInput {
                id: s.doc_id.clone(),
                state: docs.get(&s.doc_id).cloned(),
                events: s.events.clone(),
            })
            .collect();
        let t = Instant::now();
        let changes = p.apply(page, inputs)?;
        if i > 0 {
            spent += sliced + t.elapsed();
        }
        anyhow::ensure!(
            changes.len() == slices.len(),
            "apply returned {} changes for {} documents",
            changes.len(),
            slices.len()
        );
        for (s, c) in slices.into_iter().zip(changes) {
            match c {
                DocChange::Put(body) => {
                    docs.insert(s.doc_id, body);
                }
                DocChange::Delete => {
                    docs.remove(&s.doc_id);
                }
                DocChange::Keep => {}
            }
        }
    }
    Ok(spent)
}

/// Medians over `runs` of `describe` on a fresh Guest (instantiation + call) and
/// right after on the same Guest (the call alone), in microseconds.
fn instantiation(loaded: &LoadedComponent, runs: usize) -> anyhow::Result<(f64, f64)> {
    let mut cold = Vec::with_capacity(runs);
    let mut warm = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let mut g = Guest::new(loaded, "incident-details@v1".into());
        let t = Instant::now();
        g.describe()?;
        cold.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        g.describe()?;
        warm.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok((median(&mut cold), median(&mut warm)))
}
