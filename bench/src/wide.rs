//! The wide workload (issue 10): many short streams with hot streams interleaved
//! into every page, rebuilt by stream-counter with a document cache far smaller than
//! its documents, then every stream's count checked against its version. A lost
//! update past the cache shows as a stream counted one short.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use refract::daemon::{DEFAULT_PAGE_SIZE, Daemon};
use refract::runtime::Runtime;
use refract::store::subscription::HandledPage;
use refract::store::{AppendRequest, ExpectedVersion, NewEvent, ProjectionKey, Store, StreamId};
use serde_json::Value;

use crate::backend::Backend;
use crate::rebuild::wait_caught_up;
use crate::report::Report;
use crate::{Scale, load_component};

/// Hot streams: one of them gets an event after every few cold events.
const HOT: usize = 100;
/// The agent's document cache in this workload: far below its documents.
const CACHE_BYTES: usize = 8 << 20;

/// Appends the dataset, rebuilds it with stream-counter, checks every count.
pub async fn run(
    report: &mut Report,
    scale: &Scale,
    dir: &std::path::Path,
    runtime: &Runtime,
    backend: &Backend,
) -> anyhow::Result<()> {
    let db = backend.create(dir, "wide-data").await?;
    let result = match db.open().await {
        Ok(store) => {
            let result = run_on(report, scale, &store, runtime).await;
            store.close().await;
            result
        }
        Err(e) => Err(e),
    };
    db.finish().await;
    result
}

async fn run_on(
    report: &mut Report,
    scale: &Scale,
    store: &Arc<dyn Store>,
    runtime: &Runtime,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let versions = prepare(store, scale.wide_streams, scale.wide_events).await?;
    let head = store.head().await?;
    eprintln!(
        "  wide: {head} events over {} streams appended in {:.1} s",
        versions.len(),
        started.elapsed().as_secs_f64()
    );
    let loaded = load_component(runtime, refract_test_artifacts::STREAM_COUNTER).await?;
    let key = ProjectionKey {
        name: loaded.descriptor.name.clone(),
        version: loaded.descriptor.version,
    };
    store.prepare_projection(&key).await?;
    let shared: Arc<dyn Store> = store.clone();
    let daemon = Daemon::new(shared, DEFAULT_PAGE_SIZE).with_budgets(8 << 20, CACHE_BYTES);
    let started = Instant::now();
    daemon.start(&loaded);
    let waited = wait_caught_up(store.as_ref(), &key, head, Duration::from_secs(3600)).await;
    let secs = started.elapsed().as_secs_f64();
    daemon.shutdown().await;
    waited?;
    report.add(
        "wide",
        "rebuild_events_per_s",
        format!(
            "stream-counter wasm, {head} events over {} streams, {} MiB cache",
            versions.len(),
            CACHE_BYTES >> 20
        ),
        head as f64 / secs,
        "events/s",
    );
    check_counts(report, store, &key, &versions).await
}

/// Cold streams get one event per round (so a stream's events are far apart), and
/// one of the hot streams gets an event after every nine cold ones. Appended in big
/// transactions through the subscription commit (many appends, one transaction):
/// one transaction per append would take minutes.
async fn prepare(
    store: &Arc<dyn Store>,
    streams: usize,
    events: usize,
) -> anyhow::Result<HashMap<String, u64>> {
    let loader = ProjectionKey {
        name: "wide-loader".into(),
        version: 1,
    };
    store.prepare_projection(&loader).await?;
    let cold = streams.saturating_sub(HOT).max(1);
    let mut versions: HashMap<String, u64> = HashMap::with_capacity(streams);
    let mut batch = Vec::new();
    let (mut appended, mut hot) = (0usize, 0usize);
    'rounds: for _round in 0.. {
        for c in 0..cold {
            let mut ids = vec![format!("cold-{c}")];
            if c % 9 == 8 {
                ids.push(format!("hot-{}", hot % HOT));
                hot += 1;
            }
            for id in ids {
                let v = versions.entry(id.clone()).or_insert(0);
                batch.push(AppendRequest {
                    stream: StreamId::new(&id)?,
                    expected: match *v {
                        0 => ExpectedVersion::NoStream,
                        v => ExpectedVersion::Exact(v),
                    },
                    idempotency_key: None,
                    tenant: None,
                    team: refract::teams::DEFAULT_TEAM.into(),
                    events: vec![NewEvent {
                        event_type: "IncidentLogged".into(),
                        data: format!("{{\"n\":{appended}}}"),
                        metadata: "{}".into(),
                    }],
                });
                *v += 1;
                appended += 1;
                if batch.len() == 20_000 || appended == events {
                    let page = HandledPage {
                        emits: std::mem::take(&mut batch),
                        ..Default::default()
                    };
                    store.commit_handled(&loader, "bench", &page).await?;
                }
                if appended == events {
                    break 'rounds;
                }
            }
        }
    }
    store.drop_projection(&loader).await?;
    Ok(versions)
}

async fn check_counts(
    report: &mut Report,
    store: &Arc<dyn Store>,
    key: &ProjectionKey,
    versions: &HashMap<String, u64>,
) -> anyhow::Result<()> {
    let ids: Vec<&String> = versions.keys().collect();
    let mut wrong = Vec::new();
    let mut sum = 0u64;
    for chunk in ids.chunks(10_000) {
        let refs: Vec<&str> = chunk.iter().map(|s| s.as_str()).collect();
        let docs = store.load_docs(key, &refs).await?;
        for id in chunk {
            let doc: Value = serde_json::from_str(
                docs.get(*id)
                    .with_context(|| format!("no count for {id}"))?,
            )?;
            let total = doc["total"].as_u64().unwrap_or(0);
            sum += total;
            if total != versions[*id] {
                wrong.push(format!("{id}: {total} of {}", versions[*id]));
            }
        }
    }
    ensure!(
        wrong.is_empty(),
        "{} streams miscounted, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    report.check(
        "wide",
        format!(
            "stream-counter counted every one of {} streams exactly ({sum} events; hot streams up to {})",
            versions.len(),
            versions.values().max().copied().unwrap_or(0)
        ),
    );
    Ok(())
}
