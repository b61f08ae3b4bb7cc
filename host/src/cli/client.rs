//! The client commands: each one request to the daemon's API.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// Arguments of `refract append`.
#[derive(Debug, clap::Args)]
pub struct AppendArgs {
    /// The stream to append to.
    stream: String,
    /// The event's type.
    #[arg(long = "type", short = 't', required_unless_present = "file")]
    event_type: Option<String>,
    /// The event's data, JSON.
    #[arg(long, short = 'd', default_value = "{}")]
    data: String,
    /// The event's metadata, a JSON object.
    #[arg(long)]
    metadata: Option<String>,
    /// Fail unless the stream is at this version (0: must not exist).
    #[arg(long)]
    expected_version: Option<u64>,
    /// Makes a retried append a no-op.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// A whole request body (`{"events": [...]}`) from a file, or `-` for stdin.
    #[arg(long, conflicts_with_all = ["event_type", "metadata"])]
    file: Option<PathBuf>,
}

/// A client of one daemon.
pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    /// A client for the daemon at `base` (e.g. `http://127.0.0.1:4300`), sending
    /// `token` (a team's or the admin's) with every request.
    pub fn new(base: &str, token: Option<&str>) -> anyhow::Result<Self> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(t) = token {
            let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {t}"))
                .context("the token holds characters an HTTP header cannot")?;
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .default_headers(headers)
                .build()
                .context("building the HTTP client")?,
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<String> {
        let resp = req.send().await.with_context(|| {
            format!(
                "cannot reach refract at {} (is `refract serve` running?)",
                self.base
            )
        })?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            let msg = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or(text);
            bail!("{status}: {msg}");
        }
        Ok(text)
    }

    pub(super) async fn append(&self, a: AppendArgs) -> anyhow::Result<()> {
        let body: Value = match &a.file {
            Some(path) => {
                let text = if path == Path::new("-") {
                    std::io::read_to_string(std::io::stdin())?
                } else {
                    std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read {}", path.display()))?
                };
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not JSON", path.display()))?
            }
            None => {
                let data: Value = serde_json::from_str(&a.data).context("--data is not JSON")?;
                let mut event = json!({ "type": a.event_type, "data": data });
                if let Some(m) = &a.metadata {
                    event["metadata"] =
                        serde_json::from_str(m).context("--metadata is not JSON")?;
                }
                let mut body = json!({ "events": [event] });
                if let Some(v) = a.expected_version {
                    body["expected_version"] = json!(v);
                }
                if let Some(k) = &a.idempotency_key {
                    body["idempotency_key"] = json!(k);
                }
                body
            }
        };
        let url = format!("{}/streams/{}/events", self.base, encode(&a.stream));
        println!("{}", self.send(self.http.post(url).json(&body)).await?);
        Ok(())
    }

    pub(super) async fn deploy(
        &self,
        files: &[PathBuf],
        auto_promote: bool,
        replace: bool,
    ) -> anyhow::Result<()> {
        for f in files {
            let wasm = std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
            let url = format!(
                "{}/components?auto_promote={auto_promote}&replace={replace}",
                self.base
            );
            let out = self
                .send(self.http.post(url).body(wasm))
                .await
                .with_context(|| format!("deploying {}", f.display()))?;
            println!("{out}");
        }
        Ok(())
    }

    pub(super) async fn status(&self, raw: bool) -> anyhow::Result<()> {
        let text = self
            .send(self.http.get(format!("{}/projections", self.base)))
            .await?;
        if raw {
            println!("{text}");
            return Ok(());
        }
        let rows: Vec<Value> = serde_json::from_str(&text)?;
        println!(
            "{:<28} {:>4} {:<12} {:<11} {:<8} {:>10} {:>8} {:>14}  error",
            "name", "ver", "kind", "state", "status", "position", "lag", "outbox p/d/f"
        );
        for r in rows {
            let s = |k: &str| {
                r.get(k)
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .unwrap_or_default()
            };
            let err = r
                .get("error")
                .filter(|e| !e.is_null())
                .map(|e| e["message"].to_string())
                .unwrap_or_default();
            let outbox = r
                .get("outbox")
                .filter(|o| o.is_object())
                .map(|o| format!("{}/{}/{}", o["pending"], o["delivered"], o["failed"]))
                .unwrap_or_default();
            println!(
                "{:<28} {:>4} {:<12} {:<11} {:<8} {:>10} {:>8} {:>14}  {err}",
                s("name"),
                s("version"),
                s("kind"),
                s("state"),
                s("status"),
                s("position"),
                s("lag"),
                outbox
            );
            if let Some(w) = r.get("waiting_for").filter(|w| w.is_object()) {
                println!(
                    "  waiting: {} committed events wait for database session pid {} \
                     (its transaction open for {:.1} s, {})",
                    w["events_waiting"],
                    w["backend_pid"],
                    (crate::store::now_micros() - w["since"].as_i64().unwrap_or(0)) as f64 / 1e6,
                    w["state"].as_str().unwrap_or("?")
                );
            }
            if let Some(c) = r.get("candidate").filter(|c| c.is_object()) {
                let why = c["error"]["message"].as_str().unwrap_or_default();
                println!(
                    "  candidate ({}, sha256 {:.12}): {} at {}, lag {}  {why}",
                    c["cause"].as_str().unwrap_or_default(),
                    c["sha256"].as_str().unwrap_or_default(),
                    c["state"].as_str().unwrap_or_default(),
                    c["position"],
                    c["lag"]
                );
            }
        }
        Ok(())
    }

    /// `GET /projections/{name}/docs[/{collection}]/{id}`.
    pub(super) async fn get_doc(
        &self,
        name: &str,
        (collection, id): (Option<&str>, &str),
        version: Option<u32>,
        after: Option<i64>,
        timeout_ms: Option<u64>,
    ) -> anyhow::Result<()> {
        let within = collection.map(|c| format!("{}/", encode(c)));
        let url = format!(
            "{}/projections/{}/docs/{}{}",
            self.base,
            encode(name),
            within.unwrap_or_default(),
            encode(id)
        );
        let query: Vec<String> = [
            version.map(|v| format!("version={v}")),
            after.map(|a| format!("after={a}")),
            timeout_ms.map(|t| format!("timeout_ms={t}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        let url = if query.is_empty() {
            url
        } else {
            format!("{url}?{}", query.join("&"))
        };
        println!("{}", self.send(self.http.get(url)).await?);
        Ok(())
    }

    /// `POST /projections/{name}/versions/{version}/{action}`.
    pub(super) async fn lifecycle(
        &self,
        name: &str,
        version: u32,
        action: &str,
    ) -> anyhow::Result<()> {
        self.on_version(reqwest::Method::POST, name, version, action)
            .await
    }

    /// `GET /projections/{name}/versions/{version}/dead-letters`.
    pub(super) async fn dead_letters(&self, name: &str, version: u32) -> anyhow::Result<()> {
        self.on_version(reqwest::Method::GET, name, version, "dead-letters")
            .await
    }

    /// Sends `method` to `/projections/{name}/versions/{version}/{action}` and prints
    /// the answer.
    async fn on_version(
        &self,
        method: reqwest::Method,
        name: &str,
        version: u32,
        action: &str,
    ) -> anyhow::Result<()> {
        let url = format!(
            "{}/projections/{}/versions/{version}/{action}",
            self.base,
            encode(name)
        );
        println!("{}", self.send(self.http.request(method, url)).await?);
        Ok(())
    }

    /// Prints every event of a stream, one JSON object a line, a page at a time
    /// (following `next`); stops quietly when the reader goes away (`| head`).
    pub(super) async fn stream(&self, id: &str) -> anyhow::Result<()> {
        let mut from = 1u64;
        loop {
            let url = format!("{}/streams/{}?from={from}", self.base, encode(id));
            let text = self.send(self.http.get(url)).await?;
            let page: Value =
                serde_json::from_str(&text).context("the daemon's answer is not JSON")?;
            let mut lines = String::new();
            for event in page["events"].as_array().into_iter().flatten() {
                lines.push_str(&event.to_string());
                lines.push('\n');
            }
            if !print(&lines)? {
                return Ok(());
            }
            match page["next"].as_u64() {
                Some(next) if next > from => from = next,
                _ => return Ok(()),
            }
        }
    }
}

impl Client {
    /// `GET /projections/{name}/docs`, every page: one JSON line per document.
    /// `query` holds the listing's parameters (`collection=`, `prefix=`, `where=`),
    /// encoded.
    pub(super) async fn docs(
        &self,
        name: &str,
        query: Vec<String>,
        version: Option<u32>,
    ) -> anyhow::Result<()> {
        let mut after: Option<String> = None;
        // Every page from the version the first one came from.
        let mut version = version;
        loop {
            let paging = [
                version.map(|v| format!("version={v}")),
                after.as_deref().map(|a| format!("after={}", encode(a))),
                Some("limit=1000".to_owned()),
            ];
            let query: Vec<String> = query
                .iter()
                .cloned()
                .chain(paging.into_iter().flatten())
                .collect();
            let url = format!(
                "{}/projections/{}/docs?{}",
                self.base,
                encode(name),
                query.join("&")
            );
            let text = self.send(self.http.get(url)).await?;
            let page: Value =
                serde_json::from_str(&text).context("the daemon's answer is not JSON")?;
            let mut lines = String::new();
            for doc in page["documents"].as_array().into_iter().flatten() {
                lines.push_str(&doc.to_string());
                lines.push('\n');
            }
            if !print(&lines)? {
                return Ok(());
            }
            version =
                version.or_else(|| page["version"].as_u64().and_then(|v| u32::try_from(v).ok()));
            match page["next"].as_str() {
                Some(next) => after = Some(next.to_owned()),
                None => return Ok(()),
            }
        }
    }
}

/// Writes `text` to stdout; `false` if the reader has gone (a closed pipe), which
/// is not an error for a command whose output may be cut short.
fn print(text: &str) -> anyhow::Result<bool> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("writing to stdout"),
    }
}

/// Percent-encodes a path segment.
pub(super) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
