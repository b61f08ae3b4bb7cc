//! Workload 5: a component deployed over the API -> its first page applied, compiling
//! from wasm (empty cache) and loading the compiled artifact from the on-disk cache
//! (a new service whose cache directory is the first one's).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use refract::store::{AppendRequest, ExpectedVersion, ProjectionKey, StreamId};

use crate::Scale;
use crate::backend::{Backend, Db};
use crate::capture::Capture;
use crate::helpdesk::{Incident, stream_id};
use crate::report::Report;
use crate::server::{self, Server};

/// Events in the store before the deploy: two pages.
const EVENTS: usize = 2000;
/// Streams they are spread over.
const STREAMS: usize = 20;

/// Runs the cold (compile) deploys, then the warm (artifact cache) ones.
pub async fn run(
    report: &mut Report,
    scale: &Scale,
    dir: &Path,
    capture: &Capture,
    backend: &Backend,
) -> anyhow::Result<()> {
    let wasm = std::fs::read(refract_test_artifacts::INCIDENT_DETAILS_V1)?;
    let mut cold = Vec::new();
    for i in 0..scale.hotswap_cold {
        let db = backend.create(dir, &format!("hotswap-cold-{i}")).await?;
        let deployed = deploy_once(&db, &wasm, capture, false).await;
        db.finish().await;
        cold.push(deployed?);
    }
    let cache = dir.join("hotswap-cold-0").join("cache");
    let mut warm = Vec::new();
    for i in 0..scale.hotswap_warm {
        let db = backend.create(dir, &format!("hotswap-warm-{i}")).await?;
        let deployed = async {
            std::os::unix::fs::symlink(&cache, db.data_dir.join("cache"))?;
            deploy_once(&db, &wasm, capture, true).await
        }
        .await;
        db.finish().await;
        warm.push(deployed?);
    }
    for (runs, kind, how) in [
        (&cold, "from_wasm", "compiling"),
        (&warm, "from_cache", "artifact cache"),
    ] {
        let n = runs.len();
        report.add(
            "hotswap",
            &format!("{kind}_ms"),
            format!("deploy -> first page, {how} (median of {n})"),
            median(runs, |d| d.ms),
            "ms",
        );
        report.add(
            "hotswap",
            &format!("{kind}_answered_ms"),
            "  deploy request answered",
            median(runs, |d| d.answered),
            "ms",
        );
        report.add(
            "hotswap",
            &format!("{kind}_load_ms"),
            "  load + validate (deploy log, whole ms)",
            median(runs, |d| d.load),
            "ms",
        );
    }
    report.check("hotswap", "the deploy log says the cold deploys compiled and the warm ones loaded the cached artifact");
    Ok(())
}

/// What one deploy took, in milliseconds.
struct Deploy {
    /// Until the first page was committed.
    ms: f64,
    /// Until the deploy request answered (compiled, registered, agent started).
    answered: f64,
    /// Compiling or loading the artifact, and validating (the deploy's log line).
    load: f64,
}

/// The median of one measure over several deploys.
fn median(runs: &[Deploy], f: impl Fn(&Deploy) -> f64) -> f64 {
    let mut v: Vec<f64> = runs.iter().map(f).collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Opens a service on `db`, appends two pages of events, deploys the component over
/// the API and times until its first page is committed.
async fn deploy_once(
    db: &Db,
    wasm: &[u8],
    capture: &Capture,
    cached: bool,
) -> anyhow::Result<Deploy> {
    let server = Server::start(db).await?;
    let result = async {
        let svc = &server.svc;
        let per = EVENTS / STREAMS;
        for n in 0..STREAMS {
            let mut g = Incident::new(n, per);
            svc.append(AppendRequest {
                stream: StreamId::new(stream_id("incident", n))?,
                expected: ExpectedVersion::NoStream,
                idempotency_key: None,
                tenant: None,
                team: refract::teams::DEFAULT_TEAM.into(),
                events: g.next_batch(per),
            })
            .await?;
        }
        let http = reqwest::Client::new();
        // A first request opens the connection, so the deploy's time is the deploy's.
        server::get_json(&http, &server.url, "/healthz").await?;
        capture.clear();
        let key = ProjectionKey {
            name: "incident-details".into(),
            version: 1,
        };
        let started = Instant::now();
        server::deploy(&http, &server.url, wasm.to_vec()).await?;
        let answered = started.elapsed().as_secs_f64() * 1000.0;
        loop {
            if svc
                .store()
                .progress(&key)
                .await
                .is_ok_and(|p| p.position > 0)
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("no page applied 120 s after the deploy");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let log = capture
            .wait_for(
                "deployed",
                "projection",
                &key.to_string(),
                Duration::from_secs(2),
            )
            .await
            .context("no deploy log line")?;
        let from_cache = log.fields.get("from_cache").and_then(|v| v.as_bool());
        ensure!(
            from_cache == Some(cached),
            "the deploy's from_cache is {from_cache:?}, expected {cached}"
        );
        let load = log
            .fields
            .get("ms")
            .and_then(|v| v.as_f64())
            .unwrap_or(f64::NAN);
        anyhow::Ok(Deploy { ms, answered, load })
    }
    .await;
    server.stop().await;
    result
}
