//! Workloads 2 and 3: a rebuild from position 0 by the incident-details component
//! through the real daemon agent, the same projection natively through the same agent
//! and store, and a raw page-by-page scan of the events with no projection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use incident_details::IncidentDetailsProjection;
use refract::daemon::{DEFAULT_PAGE_SIZE, Daemon};
use refract::runtime::{LoadedComponent, Runtime};
use refract::store::{ProjectionKey, ReadBudget, RunStatus, Store};
use serde_json::Value;

use crate::capture::Capture;
use crate::dataset::{Dataset, PREFIX};
use crate::helpdesk::{sdk_events, stream_id};
use crate::native::Native;
use crate::report::Report;
use crate::{Scale, load_component};

/// The key of the native run: its own documents and progress.
const NATIVE_NAME: &str = "incident-details-native";

/// Which projector a rebuild runs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Wasm,
    Native,
}

/// What one rebuild took, and where the agent says the time went.
struct Run {
    kind: Kind,
    secs: f64,
    phases: Vec<(String, f64)>,
}

/// Runs the scan and/or the rebuilds over the prepared dataset.
pub async fn run(
    report: &mut Report,
    scale: &Scale,
    ds: &Dataset,
    runtime: &Runtime,
    capture: &Capture,
    (scan, rebuild): (bool, bool),
) -> anyhow::Result<()> {
    let store = ds.db.open().await?;
    let result = run_on(report, scale, ds, runtime, capture, &store, (scan, rebuild)).await;
    store.close().await;
    result
}

async fn run_on(
    report: &mut Report,
    scale: &Scale,
    ds: &Dataset,
    runtime: &Runtime,
    capture: &Capture,
    store: &Arc<dyn Store>,
    (scan, rebuild): (bool, bool),
) -> anyhow::Result<()> {
    let loaded = load_component(runtime, refract_test_artifacts::INCIDENT_DETAILS_V1).await?;
    let types = loaded.descriptor.event_types.clone();
    let head = store.head().await?;
    ensure!(
        head == ds.total,
        "the dataset's head is {head}, expected {}",
        ds.total
    );
    if scan {
        let mut best: f64 = 0.0;
        for _ in 0..scale.repeats {
            best = best.max(raw_scan(store, &types, head).await?);
        }
        report.add(
            "scan",
            "events_per_s",
            format!("read_page x{DEFAULT_PAGE_SIZE} (projection's types), no projection"),
            best,
            "events/s",
        );
    }
    if !rebuild {
        return Ok(());
    }
    let shared: Arc<dyn Store> = store.clone();
    // ABBA when repeated, so neither kind always runs on a warmer cache.
    let order: Vec<Kind> = match scale.repeats {
        1 => vec![Kind::Wasm, Kind::Native],
        _ => vec![Kind::Wasm, Kind::Native, Kind::Native, Kind::Wasm],
    };
    let mut runs = Vec::new();
    for kind in order {
        let run = rebuild_once(&shared, &loaded, kind, head, capture).await?;
        eprintln!("  {kind:?} rebuild: {:.2} s", run.secs);
        runs.push(run);
    }
    let best = |k: Kind| {
        runs.iter()
            .filter(|r| r.kind == k)
            .min_by(|a, b| a.secs.total_cmp(&b.secs))
            .context("no run")
    };
    let (wasm, native) = (best(Kind::Wasm)?, best(Kind::Native)?);
    let times: Vec<String> = runs
        .iter()
        .map(|r| format!("{:?} {:.2} s", r.kind, r.secs))
        .collect();
    report.note(format!(
        "rebuild runs in order (the best of each counts): {}",
        times.join(", ")
    ));
    let n = head as f64;
    report.add(
        "rebuild",
        "wasm_events_per_s",
        format!("incident-details wasm, {head} events"),
        n / wasm.secs,
        "events/s",
    );
    report.add(
        "rebuild",
        "native_events_per_s",
        format!("incident-details native, {head} events"),
        n / native.secs,
        "events/s",
    );
    report.add(
        "rebuild",
        "wasm_native_ratio",
        "wasm time / native time",
        wasm.secs / native.secs,
        "x",
    );
    for run in [wasm, native] {
        let kind = format!("{:?}", run.kind).to_lowercase();
        if let Some((phase, ms)) = run.phases.iter().max_by(|a, b| a.1.total_cmp(&b.1)) {
            let total: f64 = run.phases.iter().map(|p| p.1).sum();
            report.note(format!(
                "{kind} rebuild: the agent's largest phase is {phase} ({ms:.0} ms of {:.0} ms wall; phases overlap, their sum is {total:.0} ms)",
                run.secs * 1000.0
            ));
        }
        for (phase, ms) in &run.phases {
            report.add(
                "rebuild",
                &format!("{kind}_{phase}"),
                format!("{kind}: agent's {phase} (overlapping)"),
                *ms,
                "ms",
            );
        }
    }
    if let Some(scan) = report.value("scan.events_per_s") {
        report.add(
            "scan",
            "rebuild_over_scan",
            "wasm rebuild rate / scan rate",
            (n / wasm.secs) / scan,
            "x",
        );
    }
    compare_docs(report, store, ds).await?;
    count_with_stream_counter(report, runtime, &shared, store, ds, capture).await
}

/// Reads every event page by page; returns events/s.
async fn raw_scan(store: &Arc<dyn Store>, types: &[String], head: i64) -> anyhow::Result<f64> {
    let started = Instant::now();
    let (mut after, mut seen) = (0, 0usize);
    while after < head {
        let page = store
            .read_page(after, Some(types), ReadBudget::page(DEFAULT_PAGE_SIZE))
            .await?;
        ensure!(
            page.scanned_to > after,
            "the scan made no progress at {after}"
        );
        seen += page.events.len();
        after = page.scanned_to;
    }
    let secs = started.elapsed().as_secs_f64();
    ensure!(seen as i64 == head, "the scan saw {seen} events of {head}");
    Ok(seen as f64 / secs)
}

/// One rebuild from position 0 on a fresh table; timed until the progress is at the head.
async fn rebuild_once(
    store: &Arc<dyn Store>,
    loaded: &LoadedComponent,
    kind: Kind,
    head: i64,
    capture: &Capture,
) -> anyhow::Result<Run> {
    let key = ProjectionKey {
        name: match kind {
            Kind::Wasm => loaded.descriptor.name.clone(),
            Kind::Native => NATIVE_NAME.to_owned(),
        },
        version: loaded.descriptor.version,
    };
    store.drop_projection(&key).await?;
    store.prepare_projection(&key).await?;
    capture.clear();
    let daemon = Daemon::new(store.clone(), DEFAULT_PAGE_SIZE);
    let started = Instant::now();
    match kind {
        Kind::Wasm => daemon.start(loaded),
        Kind::Native => daemon.start_with(
            key.clone(),
            loaded.descriptor.event_types.clone(),
            Box::new(Native::<IncidentDetailsProjection>::new(key.to_string())),
        ),
    }
    let waited = wait_caught_up(store.as_ref(), &key, head, Duration::from_secs(3600)).await;
    let secs = started.elapsed().as_secs_f64();
    let logged = capture
        .wait_for(
            "caught up",
            "projection",
            &key.to_string(),
            Duration::from_secs(2),
        )
        .await;
    daemon.shutdown().await;
    waited?;
    let progress = store.progress(&key).await?;
    ensure!(
        progress.events_applied == head as u64,
        "{key} applied {} events of {head}",
        progress.events_applied
    );
    let phases = logged
        .map(|c| {
            c.fields
                .iter()
                .filter(|(k, _)| k.ends_with("_ms") && k.as_str() != "wall_ms")
                .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                .collect()
        })
        .unwrap_or_default();
    Ok(Run { kind, secs, phases })
}

/// Polls the version's progress until it reaches `head`; fails if it pauses.
pub async fn wait_caught_up(
    store: &dyn Store,
    key: &ProjectionKey,
    head: i64,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let p = store.progress(key).await?;
        if p.position >= head {
            return Ok(());
        }
        if p.status == RunStatus::Paused {
            bail!("{key} paused: {}", p.error.unwrap_or_default());
        }
        if Instant::now() > deadline {
            bail!("{key} is at {} of {head} after {timeout:?}", p.position);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Checks wasm and native documents are equal, and equal to a native fold of the
/// regenerated stream, for a sample of ids; and that every stream has a document.
async fn compare_docs(
    report: &mut Report,
    store: &Arc<dyn Store>,
    ds: &Dataset,
) -> anyhow::Result<()> {
    let wasm = ProjectionKey {
        name: "incident-details".into(),
        version: 1,
    };
    let native = ProjectionKey {
        name: NATIVE_NAME.into(),
        version: 1,
    };
    let step = (ds.streams / 100).max(1);
    let mut compared = 0;
    for n in (0..ds.streams).step_by(step) {
        let id = stream_id(PREFIX, n);
        let parse = |doc: Option<String>, which: &str| -> anyhow::Result<Value> {
            let text = doc.with_context(|| format!("{which} has no document {id}"))?;
            Ok(serde_json::from_str(&text)?)
        };
        let w = parse(store.get_doc(&wasm, &id).await?, "wasm")?;
        let nat = parse(store.get_doc(&native, &id).await?, "native")?;
        let events = sdk_events(PREFIX, n, ds.per_stream);
        let folded = refract_guest::testing::project::<IncidentDetailsProjection>(&events)
            .map_err(|e| anyhow::anyhow!("native fold of {id}: {e}"))?;
        let expected = folded
            .get(&id)
            .with_context(|| format!("the fold made no {id}"))?;
        ensure!(w == nat, "{id}: wasm {w} != native {nat}");
        ensure!(&w == expected, "{id}: projected {w} != folded {expected}");
        compared += 1;
    }
    for key in [&wasm, &native] {
        let ids: Vec<String> = (0..ds.streams).map(|n| stream_id(PREFIX, n)).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let docs = store.load_docs(key, &refs).await?;
        ensure!(
            docs.len() == ds.streams,
            "{key} has {} documents of {}",
            docs.len(),
            ds.streams
        );
    }
    report.check(
        "rebuild",
        format!("{compared} sampled documents are equal in wasm, native and a native fold of the regenerated stream; both have all {} documents", ds.streams),
    );
    Ok(())
}

/// Rebuilds stream-counter over the dataset and checks every stream counted exactly
/// its events: a lost or doubled event shows.
async fn count_with_stream_counter(
    report: &mut Report,
    runtime: &Runtime,
    shared: &Arc<dyn Store>,
    store: &Arc<dyn Store>,
    ds: &Dataset,
    capture: &Capture,
) -> anyhow::Result<()> {
    let loaded = load_component(runtime, refract_test_artifacts::STREAM_COUNTER).await?;
    let key = ProjectionKey {
        name: loaded.descriptor.name.clone(),
        version: loaded.descriptor.version,
    };
    store.drop_projection(&key).await?;
    store.prepare_projection(&key).await?;
    capture.clear();
    let daemon = Daemon::new(shared.clone(), DEFAULT_PAGE_SIZE);
    let started = Instant::now();
    daemon.start(&loaded);
    let waited = wait_caught_up(store.as_ref(), &key, ds.total, Duration::from_secs(3600)).await;
    let secs = started.elapsed().as_secs_f64();
    daemon.shutdown().await;
    waited?;
    report.add(
        "rebuild",
        "counter_events_per_s",
        "stream-counter wasm (count check)",
        ds.total as f64 / secs,
        "events/s",
    );
    let ids: Vec<String> = (0..ds.streams).map(|n| stream_id(PREFIX, n)).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let docs = store.load_docs(&key, &refs).await?;
    let mut sum = 0u64;
    for id in &ids {
        let doc: Value =
            serde_json::from_str(docs.get(id).with_context(|| format!("no count for {id}"))?)?;
        let total = doc["total"]
            .as_u64()
            .with_context(|| format!("{id}: no total in {doc}"))?;
        ensure!(
            total == ds.per_stream as u64,
            "{id} counted {total} events, expected {}",
            ds.per_stream
        );
        sum += total;
    }
    ensure!(
        sum == ds.total as u64,
        "counted {sum} events in all, expected {}",
        ds.total
    );
    report.check(
        "rebuild",
        format!(
            "stream-counter counted exactly {} events in each of {} streams ({sum} in all)",
            ds.per_stream, ds.streams
        ),
    );
    Ok(())
}
