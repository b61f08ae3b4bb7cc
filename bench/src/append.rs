//! Workload 1: events/s appended through the library (`Store::append`) and over
//! the HTTP API, single events and batches of 100, with 1 and 8 concurrent clients.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, ensure};
use refract::store::{AppendRequest, AppendResult, EventStore, ExpectedVersion, StreamId};

use crate::Scale;
use crate::backend::Backend;
use crate::helpdesk::{Incident, stream_id};
use crate::report::Report;
use crate::server::{self, Server};

/// Streams each client appends to, round robin.
const STREAMS_PER_CLIENT: usize = 20;

/// The four shapes measured: (events per append, concurrent clients).
const SHAPES: [(usize, usize); 4] = [(1, 1), (1, 8), (100, 1), (100, 8)];

/// One append a client will make: the request and what its result must say.
struct Planned {
    req: AppendRequest,
    version_after: u64,
}

/// Plans a client's appends: `total` events in appends of `batch`, round robin over
/// its streams, each append expecting the stream's exact version.
fn plan(prefix: &str, batch: usize, total: usize) -> anyhow::Result<Vec<Planned>> {
    let appends = total / batch;
    let per_stream = (appends.div_ceil(STREAMS_PER_CLIENT)) * batch;
    let mut gens: Vec<Incident> = (0..STREAMS_PER_CLIENT)
        .map(|n| Incident::new(n, per_stream))
        .collect();
    let mut out = Vec::with_capacity(appends);
    for a in 0..appends {
        let s = a % STREAMS_PER_CLIENT;
        let g = &mut gens[s];
        let expected = g.expected();
        let events = g.next_batch(batch);
        out.push(Planned {
            req: AppendRequest {
                stream: StreamId::new(stream_id(prefix, s))?,
                expected,
                idempotency_key: None,
                tenant: None,
                team: refract::teams::DEFAULT_TEAM.into(),
                events,
            },
            version_after: g.version(),
        });
    }
    Ok(out)
}

/// Checks one append's result: the stream's new version and one sequence per event.
fn verify(stream: &str, count: usize, version_after: u64, r: &AppendResult) -> anyhow::Result<()> {
    ensure!(
        r.stream_version == version_after && r.last_sequence - r.first_sequence + 1 == count as i64,
        "append to {stream} returned {r:?}; expected version {version_after} and {count} sequences"
    );
    Ok(())
}

/// Waits for the clients, checks the head moved by exactly `events`, returns events/s.
async fn finish(
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    store: &dyn EventStore,
    before: i64,
    events: usize,
    started: Instant,
    what: &str,
) -> anyhow::Result<f64> {
    for t in tasks {
        t.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    let after = store.head().await?;
    ensure!(
        after - before == events as i64,
        "{what} append of {events} events moved the head by {}",
        after - before
    );
    Ok(events as f64 / secs)
}

/// Runs the append workload, library then HTTP, each on its own store.
pub async fn run(
    report: &mut Report,
    scale: &Scale,
    dir: &Path,
    backend: &Backend,
) -> anyhow::Result<()> {
    let db = backend.create(dir, "append-library").await?;
    let store = db.open().await?;
    let result = library(report, scale, &store).await;
    store.close().await;
    db.finish().await;
    result?;

    let db = backend.create(dir, "append-http").await?;
    let result = match Server::start(&db).await {
        Ok(server) => {
            let result = http(report, scale, &server).await;
            server.stop().await;
            result
        }
        Err(e) => Err(e),
    };
    db.finish().await;
    result?;

    let best = |kind: &str| {
        [1, 8]
            .iter()
            .filter_map(|c| report.value(&format!("append.{kind}_b100_c{c}")))
            .fold(0.0, f64::max)
    };
    let (lib, http) = (best("library"), best("http"));
    report.add(
        "append",
        "library_batch_best",
        "library, batches of 100, best of 1/8 clients",
        lib,
        "events/s",
    );
    report.add(
        "append",
        "http_batch_best",
        "HTTP, batches of 100, best of 1/8 clients",
        http,
        "events/s",
    );
    if http > 0.0 {
        report.add(
            "append",
            "library_over_http_batch",
            "library / HTTP, batches of 100",
            lib / http,
            "x",
        );
    }
    Ok(())
}

/// The library appends, every shape, on one store.
async fn library(
    report: &mut Report,
    scale: &Scale,
    store: &std::sync::Arc<dyn refract::store::Store>,
) -> anyhow::Result<()> {
    for (batch, clients) in SHAPES {
        let total = scale.total_for_batch(batch);
        let prefix = format!("lib-b{batch}-c{clients}");
        let plans = (0..clients)
            .map(|c| plan(&format!("{prefix}-k{c}"), batch, total / clients))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let events: usize = plans.iter().flatten().map(|p| p.req.events.len()).sum();
        let before = store.head().await?;
        let started = Instant::now();
        let tasks: Vec<_> = plans
            .into_iter()
            .map(|plans| {
                let store = store.clone();
                tokio::spawn(async move {
                    for Planned { req, version_after } in plans {
                        let (stream, count) = (req.stream.clone(), req.events.len());
                        let r = store.append(req).await?;
                        verify(stream.as_str(), count, version_after, &r)?;
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        let rate = finish(tasks, store.as_ref(), before, events, started, "library").await?;
        report.add(
            "append",
            &format!("library_b{batch}_c{clients}"),
            label("library", batch, clients),
            rate,
            "events/s",
        );
    }
    report.check("append", "library appends: every result's version and sequences, and the head, match what was appended");
    Ok(())
}

/// A prepared HTTP append.
struct Request {
    stream: String,
    body: String,
    count: usize,
    version_after: u64,
}

fn label(via: &str, batch: usize, clients: usize) -> String {
    let what = if batch == 1 {
        "single events".to_owned()
    } else {
        format!("batches of {batch}")
    };
    let who = if clients == 1 {
        "1 client".to_owned()
    } else {
        format!("{clients} clients")
    };
    format!("{via}, {what}, {who}")
}

async fn http(report: &mut Report, scale: &Scale, server: &Server) -> anyhow::Result<()> {
    let store = server.svc.store().clone();
    for (batch, clients) in SHAPES {
        let total = scale.total_for_batch(batch);
        let prefix = format!("http-b{batch}-c{clients}");
        let mut work = Vec::with_capacity(clients);
        let mut events = 0;
        for c in 0..clients {
            let plans = plan(&format!("{prefix}-k{c}"), batch, total / clients)?;
            let bodies: Vec<Request> = plans
                .into_iter()
                .map(|p| {
                    let expected = match p.req.expected {
                        ExpectedVersion::Any => None,
                        ExpectedVersion::NoStream => Some(0),
                        ExpectedVersion::Exact(n) => Some(n),
                    };
                    events += p.req.events.len();
                    Request {
                        body: server::append_body(expected, &p.req.events),
                        stream: p.req.stream.to_string(),
                        count: p.req.events.len(),
                        version_after: p.version_after,
                    }
                })
                .collect();
            work.push(bodies);
        }
        let before = store.head().await?;
        let started = Instant::now();
        let tasks: Vec<_> = work
            .into_iter()
            .map(|bodies| {
                let url = server.url.clone();
                tokio::spawn(async move {
                    let http = reqwest::Client::new();
                    for r in bodies {
                        let result = server::append(&http, &url, &r.stream, r.body)
                            .await
                            .with_context(|| format!("appending to {}", r.stream))?;
                        verify(&r.stream, r.count, r.version_after, &result)?;
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        let rate = finish(tasks, store.as_ref(), before, events, started, "HTTP").await?;
        report.add(
            "append",
            &format!("http_b{batch}_c{clients}"),
            label("HTTP", batch, clients),
            rate,
            "events/s",
        );
    }
    report.check("append", "HTTP appends: every response's version and sequences, and the head, match what was appended");
    Ok(())
}
