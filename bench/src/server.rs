//! The service with its HTTP API in-process on 127.0.0.1:0, and the few API calls the
//! workloads make over it.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, bail};
use refract::config::ComponentConfig;
use refract::store::{AppendResult, NewEvent};
use refract::{Config, Refract};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::backend::Db;

/// A running service and its API server.
pub struct Server {
    /// The service.
    pub svc: Arc<Refract>,
    /// The API's base URL.
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Server {
    /// Opens the service on the workload's store and data directory and serves its
    /// API on a free local port.
    pub async fn start(db: &Db) -> anyhow::Result<Self> {
        Self::start_with(db, BTreeMap::new()).await
    }

    /// As [`Server::start`], with the config's per-component settings
    /// (`[components.<name>]`).
    pub async fn start_with(
        db: &Db,
        components: BTreeMap<String, ComponentConfig>,
    ) -> anyhow::Result<Self> {
        let config = Config {
            data_dir: db.data_dir.clone(),
            store: db.url.clone(),
            components,
            ..Config::default()
        };
        let svc = Refract::open(&config).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let app = refract::api::router(svc.clone());
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                eprintln!("API server failed: {e}");
            }
        });
        Ok(Self {
            svc,
            url,
            stop: Some(stop),
            task,
        })
    }

    /// Stops the API server and the service.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
        self.svc.shutdown().await;
    }
}

/// The JSON body of an append of `events` at `expected` (None: any version).
pub fn append_body(expected: Option<u64>, events: &[NewEvent]) -> String {
    let mut body =
        String::with_capacity(64 + events.iter().map(|e| e.data.len() + 40).sum::<usize>());
    body.push_str("{\"expected_version\":");
    match expected {
        Some(v) => body.push_str(&v.to_string()),
        None => body.push_str("null"),
    }
    body.push_str(",\"events\":[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str("{\"type\":\"");
        body.push_str(&e.event_type);
        body.push_str("\",\"data\":");
        body.push_str(&e.data);
        body.push('}');
    }
    body.push_str("]}");
    body
}

/// POSTs a prepared append body to a stream; fails on anything but success.
pub async fn append(
    http: &reqwest::Client,
    url: &str,
    stream: &str,
    body: String,
) -> anyhow::Result<AppendResult> {
    let resp = http
        .post(format!("{url}/streams/{stream}/events"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .context("append request")?;
    let status = resp.status();
    let bytes = resp.bytes().await?;
    if !status.is_success() {
        bail!(
            "append to {stream} answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    Ok(serde_json::from_slice(&bytes)?)
}

/// GETs a path; `None` on 404, the JSON otherwise; fails on other errors.
pub async fn get_json(
    http: &reqwest::Client,
    url: &str,
    path: &str,
) -> anyhow::Result<Option<Value>> {
    let resp = http.get(format!("{url}{path}")).send().await?;
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let bytes = resp.bytes().await?;
    if !status.is_success() {
        bail!(
            "GET {path} answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    Ok(Some(serde_json::from_slice(&bytes)?))
}

/// POSTs a component's wasm; fails unless it is deployed.
pub async fn deploy(http: &reqwest::Client, url: &str, wasm: Vec<u8>) -> anyhow::Result<Value> {
    let resp = http
        .post(format!("{url}/components"))
        .body(wasm)
        .send()
        .await?;
    let status = resp.status();
    let bytes = resp.bytes().await?;
    if !status.is_success() {
        bail!(
            "deploy answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    Ok(serde_json::from_slice(&bytes)?)
}

/// The entry of `GET /projections` for a projection name, if deployed.
pub async fn projection_status(
    http: &reqwest::Client,
    url: &str,
    name: &str,
) -> anyhow::Result<Option<Value>> {
    let list = get_json(http, url, "/projections")
        .await?
        .context("GET /projections answered 404")?;
    Ok(list
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == name))
        .cloned())
}
