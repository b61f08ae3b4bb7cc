//! The outbox turned against the host (issue 11, point 4 and the body cap of point
//! 5), by a team whose subscription (`outbox-probe`) sends where an attacker likes:
//! a 40 MiB body is the guest's error and nothing goes out; a receiver that takes 15 s
//! per message delays only its own team (another team's messages arrive within 2 s,
//! and SIGTERM still ends the daemon within 10 s); a redirect (307 or 302) to a
//! loopback sink is a failed attempt with its `Location` logged, the sink gets
//! nothing; a grant without a port reaches no other port; a granted name that
//! resolves to loopback is refused at connect time.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::Daemon;
use crate::common::bystander::Bystander;

/// The daemon's peak RSS bound while an outbox attack runs (guest instances, the
/// bystander's documents, a 40 MiB body copied once from its guest).
const RSS_BOUND: u64 = 512 << 20;

/// How long the bystander keeps appending after an attack's checks.
const SOAK: Duration = Duration::from_secs(2);

/// One outbox attack at a time: each is measured beside its bystander, not beside
/// another attack (a 40 MiB guest next door would cost the bystander CPU, not the
/// daemon under test).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starts the bystander and waits until its appends show, so the attack that follows
/// runs while it works (its first pages are not the attack's cost).
async fn bystander(d: &Daemon) -> Bystander {
    let by = Bystander::start(d, Some("good-token")).await;
    let started = Instant::now();
    loop {
        let (code, list) = d
            .request_as(Some("good-token"), Method::GET, "/projections", None)
            .await;
        assert_eq!(code, 200, "{list}");
        let position = list.as_array().and_then(|l| {
            l.iter()
                .find(|p| p["name"] == "incident-details")
                .and_then(|p| p["position"].as_i64())
        });
        if position >= Some(1) {
            return by;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the bystander never appended: {list}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The bystander's verdict, the daemon's peak RSS, and SIGTERM within 10 s.
async fn bystander_unharmed(d: &mut Daemon, by: Bystander) {
    bystander_unharmed_ending_within(d, by, Duration::from_secs(10)).await;
}

/// [`bystander_unharmed`], with SIGTERM ending the daemon within `limit`.
async fn bystander_unharmed_ending_within(d: &mut Daemon, by: Bystander, limit: Duration) {
    // The attack's aftermath (retries, a held delivery, a paused guest) goes on while
    // the bystander keeps appending, so its numbers rest on more than a few appends.
    tokio::time::sleep(SOAK).await;
    let report = by.finish(d).await;
    assert!(report.latencies.len() >= 10, "{report:?}");
    report.assert_p99_below(Duration::from_millis(100));
    d.assert_peak_rss_below(RSS_BOUND);
    d.sigterm_within(limit);
}

/// How a test endpoint answers.
#[derive(Clone)]
enum Mode {
    /// 200 at once.
    Ok,
    /// 200 after this long.
    Slow(Duration),
    /// This redirect status, to this `Location`.
    Redirect(StatusCode, String),
}

/// A local HTTP endpoint at `/hook` (any method) recording every request.
#[derive(Clone)]
struct Endpoint {
    /// (message id, method, when it arrived) of every request.
    hits: Arc<Mutex<Vec<(String, String, Instant)>>>,
    mode: Mode,
    addr: SocketAddr,
}

impl Endpoint {
    async fn start(mode: Mode) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let endpoint = Self {
            hits: Arc::default(),
            mode,
            addr,
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::any(answer))
            .with_state(endpoint.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        endpoint
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn hits(&self) -> Vec<(String, String, Instant)> {
        self.hits.lock().expect("lock").clone()
    }
}

async fn answer(
    axum::extract::State(e): axum::extract::State<Endpoint>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let id = headers
        .get("refract-message-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    e.hits
        .lock()
        .expect("lock")
        .push((id, method.to_string(), Instant::now()));
    match e.mode {
        Mode::Ok => StatusCode::OK.into_response(),
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            StatusCode::OK.into_response()
        }
        Mode::Redirect(status, location) => {
            (status, [(header::LOCATION, location)]).into_response()
        }
    }
}

/// A config with teams `good` (the bystander's) and each of `teams` as
/// (name, outbound_hosts, webhook_url of its outbox-probe).
fn config(teams: &[(&str, &[String], &str)]) -> String {
    // The bystander reads only its own streams: the probes never reach it.
    let mut c =
        String::from("[teams.good]\ntoken = \"good-token\"\nread_streams = [\"bystander-*\"]\n");
    for (team, hosts, url) in teams {
        c.push_str(&format!(
            "[teams.{team}]\ntoken = \"{team}-token\"\noutbound_hosts = {hosts:?}\n\
             [components.\"{team}.outbox-probe\"]\nattempts = 1\n\
             [components.\"{team}.outbox-probe\".settings]\nwebhook_url = \"{url}\"\n"
        ));
    }
    c
}

fn token(team: &str) -> String {
    format!("{team}-token")
}

async fn deploy_probe(d: &Daemon, team: &str) {
    let wasm = std::fs::read(refract_test_artifacts::OUTBOX_PROBE).expect("component");
    let (code, body) = d
        .request_as(Some(&token(team)), Method::POST, "/components", Some(wasm))
        .await;
    assert_eq!(code, 200, "deploy as {team}: {body}");
}

/// Appends one `OutboxProbe` event padded to `pad_bytes` as `team`.
async fn probe(d: &Daemon, team: &str, stream: &str, pad_bytes: usize) {
    let body = json!({"events": [{"type": "OutboxProbe", "data": {"pad_bytes": pad_bytes}}]});
    let (code, resp) = d
        .request_as(
            Some(&token(team)),
            Method::POST,
            &format!("/streams/{stream}/events"),
            Some(body.to_string().into_bytes()),
        )
        .await;
    assert_eq!(code, 200, "append as {team}: {resp}");
}

/// `team`'s outbox-probe status row, as the team sees it.
async fn status(d: &Daemon, team: &str) -> Value {
    let (code, list) = d
        .request_as(Some(&token(team)), Method::GET, "/projections", None)
        .await;
    assert_eq!(code, 200, "{list}");
    list.as_array()
        .and_then(|l| l.iter().find(|p| p["name"] == "outbox-probe").cloned())
        .unwrap_or_else(|| panic!("no outbox-probe for {team}: {list}"))
}

/// Polls `team`'s status until `done` holds (30 s at most).
async fn wait_status(d: &Daemon, team: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let p = status(d, team).await;
        if done(&p) {
            return p;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{team}: {p}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_hits(e: &Endpoint, n: usize, within: Duration) -> Duration {
    let started = Instant::now();
    while e.hits().len() < n {
        assert!(
            started.elapsed() < within,
            "{} of {n} requests within {within:?}",
            e.hits().len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_40_mib_outbox_message_is_the_guests_error_and_nothing_goes_out() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let sink = Endpoint::start(Mode::Ok).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let hosts = [sink.addr.to_string()];
    let mut d = Daemon::start(
        &dir.path().join("data"),
        Some(&config(&[("evil", &hosts, &sink.url())])),
    );
    deploy_probe(&d, "evil").await;
    // Deployed first: the attack is the outbox, not a compilation.
    let by = bystander(&d).await;
    probe(&d, "evil", "probe-1", 100).await;
    wait_hits(&sink, 1, Duration::from_secs(30)).await;

    probe(&d, "evil", "probe-2", 40 << 20).await;
    let p = wait_status(&d, "evil", |p| p["status"] == "paused").await;
    let message = p["error"]["message"].as_str().unwrap_or_default();
    eprintln!("40 MiB send: {message}");
    let size: usize = message
        .split("the message body is ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no size named: {p}"));
    assert!(size > 40 << 20, "{p}");
    assert!(
        message.contains("over the limit of 1048576 bytes") && message.contains("max_outbox_bytes"),
        "{p}"
    );
    assert_eq!(p["error"]["fault"], "guest", "{p}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.hits().len(), 1, "only the small message went out");
    let p = status(&d, "evil").await;
    assert_eq!(
        (&p["outbox"]["delivered"], &p["outbox"]["pending"]),
        (&json!(1), &json!(0)),
        "{p}"
    );
    bystander_unharmed(&mut d, by).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_messages_of_1_mb_from_one_page_are_over_its_budget_and_none_goes_out() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let sink = Endpoint::start(Mode::Ok).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let hosts = [sink.addr.to_string()];
    let mut d = Daemon::start(
        &dir.path().join("data"),
        Some(&config(&[("flood", &hosts, &sink.url())])),
    );
    deploy_probe(&d, "flood").await;
    // Deployed first: the attack is the outbox, not a compilation.
    let by = bystander(&d).await;
    let events: Vec<Value> = (0..40)
        .map(|_| json!({"type": "OutboxProbe", "data": {"pad_bytes": 1_000_000}}))
        .collect();
    let (code, resp) = d
        .request_as(
            Some(&token("flood")),
            Method::POST,
            "/streams/flood-1/events",
            Some(json!({ "events": events }).to_string().into_bytes()),
        )
        .await;
    assert_eq!(code, 200, "{resp}");
    let p = wait_status(&d, "flood", |p| p["status"] == "paused").await;
    let message = p["error"]["message"].as_str().unwrap_or_default();
    eprintln!("40 x 1 MB in one page: {message}");
    assert!(message.contains("33554432 bytes per page"), "{p}");
    assert_eq!(p["outbox"]["pending"], 0, "{p}");
    assert_eq!(p["outbox"]["delivered"], 0, "{p}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sink.hits().is_empty(), "the sink got {:?}", sink.hits());
    bystander_unharmed(&mut d, by).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_takes_15_s_delays_only_its_own_team() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let slow = Endpoint::start(Mode::Slow(Duration::from_secs(15))).await;
    let fast = Endpoint::start(Mode::Ok).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let slow_hosts = [slow.addr.to_string()];
    let fast_hosts = [fast.addr.to_string()];
    let cfg = config(&[
        ("slow", &slow_hosts, &slow.url()),
        ("fast", &fast_hosts, &fast.url()),
    ]);
    let mut d = Daemon::start(&dir.path().join("data"), Some(&cfg));
    deploy_probe(&d, "slow").await;
    deploy_probe(&d, "fast").await;
    // Deployed first: the attack is the outbox, not a compilation.
    let by = bystander(&d).await;
    // Both subscriptions see every probe event: the slow team's outbox fills with
    // messages its receiver holds for 15 s each (past the 10 s request timeout).
    let mut worst = Duration::ZERO;
    for i in 0..6 {
        probe(&d, "fast", &format!("probe-{i}"), 10).await;
        let took = wait_hits(&fast, i + 1, Duration::from_secs(2)).await;
        worst = worst.max(took);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    eprintln!("fast team: worst append-to-delivery {worst:?}");
    let held = slow.hits();
    assert!(!held.is_empty(), "the slow receiver holds a delivery");
    assert!(
        held.len() <= 2,
        "the slow team's messages go one at a time: {held:?}"
    );
    // SIGTERM (below) arrives while the slow receiver still holds the latest request.
    let latest = held.iter().map(|h| h.2).max().expect("a request");
    assert!(latest.elapsed() < Duration::from_secs(8), "{held:?}");
    // Well inside the daemon's own 9.5 s exit deadline: the held delivery is abandoned
    // at once, not waited for.
    bystander_unharmed_ending_within(&mut d, by, Duration::from_secs(5)).await;

    // The delivery cut short by the shutdown stayed pending: after a restart the same
    // message is sent again.
    let first = held[0].0.clone();
    let _again = Daemon::start(&dir.path().join("data"), Some(&cfg));
    wait_hits(&slow, held.len() + 1, Duration::from_secs(30)).await;
    let ids: Vec<String> = slow.hits().into_iter().map(|h| h.0).collect();
    assert!(
        ids.iter().filter(|id| **id == first).count() >= 2,
        "{first} sent again after the restart: {ids:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_a_loopback_sink_fails_with_its_location_and_reaches_nothing() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let sink = Endpoint::start(Mode::Ok).await;
    let r307 = Endpoint::start(Mode::Redirect(StatusCode::TEMPORARY_REDIRECT, sink.url())).await;
    let r302 = Endpoint::start(Mode::Redirect(StatusCode::FOUND, sink.url())).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let hosts307 = [r307.addr.to_string()];
    let hosts302 = [r302.addr.to_string()];
    let mut d = Daemon::start(
        &dir.path().join("data"),
        Some(&config(&[
            ("evil", &hosts307, &r307.url()),
            ("worse", &hosts302, &r302.url()),
        ])),
    );
    deploy_probe(&d, "evil").await;
    deploy_probe(&d, "worse").await;
    // Deployed first: the attack is the outbox, not a compilation.
    let by = bystander(&d).await;
    probe(&d, "evil", "probe-1", 10).await;
    for (team, redirector, code) in [("evil", &r307, "307"), ("worse", &r302, "302")] {
        let p = wait_status(&d, team, |p| {
            p["outbox"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("Location"))
        })
        .await;
        let error = p["outbox"]["last_error"].as_str().unwrap_or_default();
        assert!(
            error.contains(code) && error.contains(&sink.url()),
            "{team}: {error}"
        );
        assert_eq!(p["outbox"]["delivered"], 0, "{p}");
        assert!(
            !redirector.hits().is_empty(),
            "{team}: the redirector was asked"
        );
    }
    let log = d.log();
    let logged = log
        .lines()
        .filter(|l| l.contains("redirects are not followed") && l.contains(&sink.url()))
        .count();
    assert!(
        logged >= 2,
        "both attempts logged with their Location:\n{log}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sink.hits().is_empty(), "the sink got {:?}", sink.hits());
    bystander_unharmed(&mut d, by).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_reaches_only_its_port_and_never_a_name_for_loopback() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let sink = Endpoint::start(Mode::Ok).await;
    let port = sink.addr.port();
    let dir = tempfile::tempdir().expect("tempdir");
    // `portless` may reach 127.0.0.1 (port 80 only) and aims at the sink's port;
    // `byname` may reach localhost:<port>, a name that resolves to loopback.
    let portless = ["127.0.0.1".to_owned()];
    let byname = [format!("localhost:{port}")];
    let mut d = Daemon::start(
        &dir.path().join("data"),
        Some(&config(&[
            ("portless", &portless, &sink.url()),
            ("byname", &byname, &format!("http://localhost:{port}/hook")),
        ])),
    );
    deploy_probe(&d, "portless").await;
    deploy_probe(&d, "byname").await;
    // Deployed first: the attack is the outbox, not a compilation.
    let by = bystander(&d).await;
    probe(&d, "portless", "probe-1", 10).await;

    let p = wait_status(&d, "portless", |p| p["status"] == "paused").await;
    let message = p["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("127.0.0.1:{port} is not granted")),
        "{p}"
    );
    let p = wait_status(&d, "byname", |p| p["outbox"]["last_error"].is_string()).await;
    let error = p["outbox"]["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("localhost") && error.contains("loopback"),
        "{p}"
    );
    assert_eq!(p["outbox"]["delivered"], 0, "{p}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sink.hits().is_empty(), "the sink got {:?}", sink.hits());
    bystander_unharmed(&mut d, by).await;
}
