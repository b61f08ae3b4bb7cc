//! Workload 4: append -> document visible through the API, under a steady, paced load.
//!
//! Load clients append single help-desk events over HTTP at the target rate in all;
//! a probe appends to its own stream every few milliseconds and polls
//! `GET /projections/stream-counter/docs/{id}` until the count includes its event.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use refract::store::NewEvent;
use tokio::time::sleep_until;

use crate::Scale;
use crate::backend::Backend;
use crate::helpdesk::{Incident, stream_id};
use crate::report::Report;
use crate::server::{self, Server};

/// Concurrent load clients sharing the target rate. Each waits for its append's
/// answer before the next, so they must be enough to offer the rate where an
/// append takes a few milliseconds (PostgreSQL's commit and sequencing: 4 clients
/// offered ~1,000 of 2,000 events/s there); 16 pace one append per 8 ms each.
const LOAD_CLIENTS: usize = 16;
/// Time between probes.
const PROBE_EVERY: Duration = Duration::from_millis(20);
/// Time between polls of a probe's document.
const POLL_EVERY: Duration = Duration::from_micros(500);
/// The probe's stream.
const PROBE: &str = "latency-probe";

/// Runs the latency workload on its own store.
pub async fn run(
    report: &mut Report,
    scale: &Scale,
    dir: &Path,
    backend: &Backend,
) -> anyhow::Result<()> {
    let db = backend.create(dir, "latency-data").await?;
    let result = match Server::start(&db).await {
        Ok(server) => {
            let result = measure(report, scale, &server).await;
            server.stop().await;
            result
        }
        Err(e) => Err(e),
    };
    db.finish().await;
    result
}

async fn measure(report: &mut Report, scale: &Scale, server: &Server) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let wasm = std::fs::read(refract_test_artifacts::STREAM_COUNTER)?;
    server::deploy(&http, &server.url, wasm).await?;
    let rate = scale.latency_rate;
    let duration = Duration::from_secs_f64(scale.latency_secs);
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let end = start + duration;
    let loads: Vec<_> = (0..LOAD_CLIENTS)
        .map(|k| {
            let url = server.url.clone();
            let streams = (scale.latency_streams / LOAD_CLIENTS).max(1);
            let interval = Duration::from_secs_f64(LOAD_CLIENTS as f64 / rate);
            tokio::spawn(load(url, k, streams, interval, start, end))
        })
        .collect();
    let probe = tokio::spawn(probe(server.url.clone(), start, end));
    let mut versions = BTreeMap::new();
    let mut sent = 0u64;
    let mut last_sent = start;
    for l in loads {
        let (n, v, last) = l.await??;
        sent += n;
        versions.extend(v);
        last_sent = last_sent.max(last);
    }
    let mut latencies = probe.await??;
    let probes = latencies.len();
    let secs = (last_sent - start).as_secs_f64().max(1e-9);
    report.add(
        "latency",
        "target_events_per_s",
        "target load (single-event HTTP appends)",
        rate,
        "events/s",
    );
    report.add(
        "latency",
        "achieved_events_per_s",
        format!("achieved load over {:.0} s", scale.latency_secs),
        sent as f64 / secs,
        "events/s",
    );
    ensure!(probes > 0, "no probe completed");
    latencies.sort_by(f64::total_cmp);
    let pct =
        |p: f64| latencies[((p / 100.0 * probes as f64).ceil() as usize).clamp(1, probes) - 1];
    report.add(
        "latency",
        "p50_ms",
        format!("append -> visible p50 ({probes} probes)"),
        pct(50.0),
        "ms",
    );
    report.add(
        "latency",
        "p99_ms",
        "append -> visible p99",
        pct(99.0),
        "ms",
    );
    report.add(
        "latency",
        "max_ms",
        "append -> visible max",
        latencies[probes - 1],
        "ms",
    );
    verify_counts(report, server, &http, &versions, probes).await
}

/// Appends single events round robin over its streams, one every `interval`, from
/// `start` until `end`; returns the events sent, each stream's version and the time
/// of the last send.
async fn load(
    url: String,
    k: usize,
    streams: usize,
    interval: Duration,
    start: tokio::time::Instant,
    end: tokio::time::Instant,
) -> anyhow::Result<(u64, BTreeMap<String, u64>, tokio::time::Instant)> {
    let http = reqwest::Client::new();
    let per_stream =
        ((end - start).as_secs_f64() / interval.as_secs_f64() / streams as f64).ceil() as usize + 1;
    let mut gens: Vec<Incident> = (0..streams).map(|n| Incident::new(n, per_stream)).collect();
    let ids: Vec<String> = (0..streams)
        .map(|n| stream_id(&format!("load-k{k}"), n))
        .collect();
    let (mut sent, mut last) = (0u64, start);
    loop {
        let at = start + interval * sent as u32;
        if at >= end {
            break;
        }
        sleep_until(at).await;
        let s = sent as usize % streams;
        let g = &mut gens[s];
        let expected = g.version();
        let events = g.next_batch(1);
        let body = server::append_body(Some(expected), &events);
        let r = server::append(&http, &url, &ids[s], body).await?;
        ensure!(
            r.stream_version == expected + 1,
            "{} is at {} after an append at {expected}",
            ids[s],
            r.stream_version
        );
        sent += 1;
        last = tokio::time::Instant::now();
    }
    let versions = ids
        .into_iter()
        .zip(gens.iter().map(Incident::version))
        .filter(|(_, v)| *v > 0)
        .collect();
    Ok((sent, versions, last))
}

/// Every `PROBE_EVERY` appends one event to the probe stream and waits until the
/// count through the API includes it; returns each wait in milliseconds.
async fn probe(
    url: String,
    start: tokio::time::Instant,
    end: tokio::time::Instant,
) -> anyhow::Result<Vec<f64>> {
    let http = reqwest::Client::new();
    let event = [NewEvent {
        event_type: "IncidentPrioritised".into(),
        data: r#"{"priority":"High","prioritised_by":"agent-1"}"#.into(),
        metadata: "{}".into(),
    }];
    let path = format!("/projections/stream-counter/docs/{PROBE}");
    let mut out = Vec::new();
    for k in 1u64.. {
        let at = start + PROBE_EVERY * k as u32;
        if at >= end {
            break;
        }
        sleep_until(at).await;
        let t0 = Instant::now();
        let r =
            server::append(&http, &url, PROBE, server::append_body(Some(k - 1), &event)).await?;
        ensure!(
            r.stream_version == k,
            "the probe stream is at {} after append {k}",
            r.stream_version
        );
        loop {
            let doc = server::get_json(&http, &url, &path).await?;
            if doc
                .and_then(|d| d["total"].as_u64())
                .is_some_and(|t| t >= k)
            {
                break;
            }
            ensure!(
                t0.elapsed() < Duration::from_secs(30),
                "probe {k} not visible after 30 s"
            );
            tokio::time::sleep(POLL_EVERY).await;
        }
        out.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(out)
}

/// Waits until stream-counter has caught up, then checks it counted every stream's
/// events exactly once.
async fn verify_counts(
    report: &mut Report,
    server: &Server,
    http: &reqwest::Client,
    versions: &BTreeMap<String, u64>,
    probes: usize,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p = server::projection_status(http, &server.url, "stream-counter")
            .await?
            .context("stream-counter is not deployed")?;
        if p["lag"] == 0 && p["status"] == "running" {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "stream-counter did not catch up: {p}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut total = 0;
    let expected = versions
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .chain([(PROBE, probes as u64)]);
    for (id, version) in expected {
        let doc = server::get_json(
            http,
            &server.url,
            &format!("/projections/stream-counter/docs/{id}"),
        )
        .await?
        .with_context(|| format!("no count for {id}"))?;
        let counted = doc["total"].as_u64().unwrap_or(0);
        ensure!(
            counted == version,
            "{id} counted {counted} events, but it has {version}"
        );
        total += counted;
    }
    report.check(
        "latency",
        format!(
            "stream-counter counted exactly the {total} events appended, per stream, over the API"
        ),
    );
    Ok(())
}
