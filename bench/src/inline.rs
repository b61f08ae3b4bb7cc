//! The inline workload (issue 14): what projecting in the append's own transaction
//! costs over HTTP, on SQLite. Two services run side by side, each with the sample
//! `word-count` deployed, one configured `lifecycle = "inline"` and one `"async"`.
//! Single-event appends of `ValueUpdated {Key, Value}` (the word's new tally) to
//! `word-{word}` streams, from 1 and from 4 concurrent clients: appends/s on each,
//! async also until its agent has caught up, and the inline/async ratios of this one
//! run. Then, one probe at a time, an append and its word's document read back:
//! inline reads it once right after the append's answer, async polls until the count
//! shows the appended value (p50/p99 of each). Every inline answer must say
//! `"projected": true`, and every word's document must end at its last value.
//! PostgreSQL projects an inline version async, so the workload is skipped there.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use refract::config::ComponentConfig;
use refract::runtime::Lifecycle;
use serde_json::{Value, json};

use crate::Scale;
use crate::backend::Backend;
use crate::report::Report;
use crate::server::{self, Server};

/// The component measured (seed 003's word counter).
const NAME: &str = "word-count";
/// Words each client appends to, round robin.
const WORDS_PER_CLIENT: usize = 16;
/// Concurrent clients of each throughput shape.
const CLIENTS: [usize; 2] = [1, 4];
/// Time between polls of an async probe's document.
const POLL_EVERY: Duration = Duration::from_micros(500);
/// The longest wait for a document or a catch-up.
const PATIENCE: Duration = Duration::from_secs(60);

/// One of the two services and the lifecycle its config gives `word-count`. Its
/// store is a SQLite file in the run's temporary directory (nothing to drop).
struct Side {
    lifecycle: Lifecycle,
    server: Server,
}

impl Side {
    /// A service on a fresh store, `word-count` deployed with `lifecycle` and warmed
    /// up by one append.
    async fn start(dir: &Path, backend: &Backend, lifecycle: Lifecycle) -> anyhow::Result<Self> {
        let name = format!("inline-{}", lifecycle.as_str());
        let db = backend.create(dir, &name).await?;
        let config = ComponentConfig {
            lifecycle: Some(lifecycle),
            ..ComponentConfig::default()
        };
        let components = BTreeMap::from([(NAME.to_owned(), config)]);
        let server = Server::start_with(&db, components).await?;
        let side = Self { lifecycle, server };
        let prepared = async {
            let (http, url) = (reqwest::Client::new(), &side.server.url);
            let wasm = std::fs::read(refract_test_artifacts::WORD_COUNT)?;
            server::deploy(&http, url, wasm).await?;
            let p = server::projection_status(&http, url, NAME).await?;
            let runs = p.as_ref().map(|p| p["lifecycle"].clone());
            ensure!(
                runs.as_ref().is_some_and(|l| l == lifecycle.as_str()),
                "{NAME} runs {runs:?}, configured {}",
                lifecycle.as_str()
            );
            append_checked(&http, url, lifecycle, "warmup", 1).await
        }
        .await;
        match prepared {
            Ok(()) => Ok(side),
            Err(e) => {
                side.server.stop().await;
                Err(e)
            }
        }
    }
}

/// Runs the workload on two fresh stores (SQLite only).
pub async fn run(
    report: &mut Report,
    scale: &Scale,
    dir: &Path,
    backend: &Backend,
) -> anyhow::Result<()> {
    if let Backend::Postgres { .. } = backend {
        report.skip(
            "inline",
            "appends_per_s",
            "PostgreSQL numbers events after their transaction commits, so a config \
             saying inline runs the projection async there",
        );
        return Ok(());
    }
    let inline = Side::start(dir, backend, Lifecycle::Inline).await?;
    let result = match Side::start(dir, backend, Lifecycle::Async).await {
        Ok(asynchronous) => {
            let result = measure(report, scale, [&inline, &asynchronous]).await;
            asynchronous.server.stop().await;
            result
        }
        Err(e) => Err(e),
    };
    inline.server.stop().await;
    result
}

async fn measure(report: &mut Report, scale: &Scale, sides: [&Side; 2]) -> anyhow::Result<()> {
    // Appends/s per (clients, lifecycle): until the last answer, and until caught up.
    let mut rates = BTreeMap::new();
    for (shape, clients) in CLIENTS.into_iter().enumerate() {
        // ABBA: inline first for 1 client, async first for 4.
        let mut order = sides;
        order.rotate_left(shape % 2);
        for side in order {
            let rate = throughput(side, clients, scale.inline_appends, shape).await?;
            rates.insert((clients, side.lifecycle.as_str()), rate);
        }
    }
    let mut probes = Vec::new();
    for side in sides {
        probes.push(latencies(side, scale.inline_probes).await?);
    }
    // The warm-up, the throughput shapes and the probes: each applied exactly once.
    let shapes: usize = CLIENTS.iter().map(|c| scale.inline_appends / c * c).sum();
    let appended = (1 + shapes + scale.inline_probes) as u64;
    let http = reqwest::Client::new();
    for side in sides {
        let p = server::projection_status(&http, &side.server.url, NAME)
            .await?
            .with_context(|| format!("{NAME} is not deployed"))?;
        ensure!(
            p["events_applied"] == appended,
            "{} {NAME} applied {} events, {appended} were appended: {p}",
            side.lifecycle.as_str(),
            p["events_applied"]
        );
        if side.lifecycle == Lifecycle::Inline {
            let m = &p["metrics"];
            report.note(format!(
                "inline: its agent ran {} events ({} pages) through the guest beside the \
                 appends, which had projected them; none was applied twice",
                m["events"], m["pages"]
            ));
        }
    }
    report.check(
        "inline",
        "every inline append answered projected: true, the async ones no inline entry, \
         every word's document holds its last value and each event was applied once, on both",
    );
    for c in CLIENTS {
        let get = |l: Lifecycle| rates.get(&(c, l.as_str())).copied();
        let (Some((inline, inline_caught_up)), Some((async_, caught_up))) =
            (get(Lifecycle::Inline), get(Lifecycle::Async))
        else {
            bail!("no rates for {c} client(s)");
        };
        let mut add = |key: &str, label: String, value: f64, unit| {
            report.add("inline", &format!("{key}_{c}c"), label, value, unit);
        };
        let s = if c == 1 { "" } else { "s" };
        let label = format!("inline, {c} client{s} ({} appends)", scale.inline_appends);
        add("inline_per_s", label, inline, "appends/s");
        let label = format!("async, {c} client{s}");
        add("async_per_s", label, async_, "appends/s");
        let label = "  async, until its agent caught up".into();
        add("async_caught_up_per_s", label, caught_up, "appends/s");
        let label = "  inline / async appends/s".into();
        add("ratio", label, inline / async_, "x");
        let label = "  inline / async until caught up".into();
        add("ratio_caught_up", label, inline_caught_up / caught_up, "x");
    }
    let n = scale.inline_probes;
    for (side, ms) in sides.iter().zip(&mut probes) {
        ms.sort_by(f64::total_cmp);
        let (l, what) = match side.lifecycle {
            Lifecycle::Inline => ("inline", "append + read"),
            _ => ("async", "append -> visible"),
        };
        for (p, of) in [(50, format!(" ({n} probes)")), (99, String::new())] {
            let (key, label) = (format!("{l}_p{p}_ms"), format!("{l} {what} p{p}{of}"));
            report.add("inline", &key, label, pct(ms, p as f64), "ms");
        }
    }
    Ok(())
}

/// `total` appends split over `clients` concurrent clients on one side's service;
/// checks every word's document once its agent has caught up.
async fn throughput(
    side: &Side,
    clients: usize,
    total: usize,
    shape: usize,
) -> anyhow::Result<(f64, f64)> {
    let per_client = total / clients;
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            // Spread over initial letters (the dictionary's pages).
            let letter = |i| char::from(b'a' + ((c * WORDS_PER_CLIENT + i) % 26) as u8);
            let words = (0..WORDS_PER_CLIENT)
                .map(|i| format!("{}s{shape}c{c}w{i}", letter(i)))
                .collect();
            let url = side.server.url.clone();
            tokio::spawn(client(url, side.lifecycle, words, per_client))
        })
        .collect();
    let mut last = Vec::new();
    for t in tasks {
        last.extend(t.await??);
    }
    let answered = started.elapsed().as_secs_f64();
    let (http, url) = (reqwest::Client::new(), &side.server.url);
    loop {
        let p = server::projection_status(&http, url, NAME)
            .await?
            .with_context(|| format!("{NAME} is not deployed"))?;
        if p["lag"] == 0 && p["status"] == "running" {
            break;
        }
        ensure!(started.elapsed() < PATIENCE, "{NAME} did not catch up: {p}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let projected = started.elapsed().as_secs_f64();
    for (word, value) in &last {
        let count = count(&http, url, word).await?;
        ensure!(
            count == Some(*value),
            "{} word-count: {word} counts {count:?}, its last value was {value}",
            side.lifecycle.as_str()
        );
    }
    let sent = (per_client * clients) as f64;
    Ok((sent / answered.max(1e-9), sent / projected.max(1e-9)))
}

/// Appends `appends` tallies round robin over its words, each expecting the word's
/// stream at its exact version; returns each word's last value.
async fn client(
    url: String,
    lifecycle: Lifecycle,
    words: Vec<String>,
    appends: usize,
) -> anyhow::Result<Vec<(String, u64)>> {
    let http = reqwest::Client::new();
    let mut values = vec![0u64; words.len()];
    for a in 0..appends {
        let w = a % words.len();
        append_checked(&http, &url, lifecycle, &words[w], values[w] + 1).await?;
        values[w] += 1;
    }
    Ok(words
        .into_iter()
        .zip(values)
        .filter(|(_, v)| *v > 0)
        .collect())
}

/// Appends one probe after another to its own word: inline reads the document once
/// right after the answer (it must hold the value), async polls until it does; returns
/// each probe's time in milliseconds.
async fn latencies(side: &Side, probes: usize) -> anyhow::Result<Vec<f64>> {
    let (http, url, word) = (reqwest::Client::new(), &side.server.url, "probe");
    server::get_json(&http, url, "/healthz").await?;
    let mut out = Vec::with_capacity(probes);
    for k in 1..=probes as u64 {
        let started = Instant::now();
        append_checked(&http, url, side.lifecycle, word, k).await?;
        loop {
            let count = count(&http, url, word).await?;
            if count.is_some_and(|c| c >= k) {
                break;
            }
            ensure!(
                side.lifecycle != Lifecycle::Inline,
                "the inline append of {word} = {k} answered, but its document says {count:?}"
            );
            ensure!(
                started.elapsed() < PATIENCE,
                "probe {k} not visible after {PATIENCE:?}"
            );
            tokio::time::sleep(POLL_EVERY).await;
        }
        out.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(out)
}

/// Appends `ValueUpdated {Key: word, Value: value}` to `word-{word}` at version
/// `value - 1`; checks the answer's version and its `inline` entries: all projected
/// for an inline version, none for an async one.
async fn append_checked(
    http: &reqwest::Client,
    url: &str,
    lifecycle: Lifecycle,
    word: &str,
    value: u64,
) -> anyhow::Result<()> {
    let body = json!({
        "expected_version": value - 1,
        "events": [{"type": "ValueUpdated", "data": {"Key": word, "Value": value}}],
    });
    let resp = http
        .post(format!("{url}/streams/word-{word}/events"))
        .json(&body)
        .send()
        .await
        .context("append request")?;
    let status = resp.status();
    let bytes = resp.bytes().await?;
    if !status.is_success() {
        bail!(
            "append to word-{word} answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    let answer: Value = serde_json::from_slice(&bytes)?;
    ensure!(
        answer["stream_version"] == value,
        "word-{word} is not at {value} after its append: {answer}"
    );
    let inline = answer.get("inline").and_then(Value::as_array);
    match lifecycle {
        Lifecycle::Inline => ensure!(
            inline.is_some_and(|a| !a.is_empty() && a.iter().all(|o| o["projected"] == true)),
            "the append to word-{word} was not projected inline: {answer}"
        ),
        _ => ensure!(
            inline.is_none(),
            "an async version answered inline: {answer}"
        ),
    }
    Ok(())
}

/// A word's count as word-count's document says it (None without one).
async fn count(http: &reqwest::Client, url: &str, word: &str) -> anyhow::Result<Option<u64>> {
    let doc = server::get_json(http, url, &format!("/projections/{NAME}/docs/word/{word}")).await?;
    Ok(doc.and_then(|d| d["count"].as_u64()))
}

/// The `p`th percentile of sorted, non-empty values.
fn pct(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    let i = ((p / 100.0 * n as f64).ceil() as usize).clamp(1, n.max(1)) - 1;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}
