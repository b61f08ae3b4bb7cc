//! Attacks on names and keys (issue 11, points 2 and 3), each beside a well-behaved
//! team (the bystander): `default` with a token walks every route of the API against
//! another team's components (404 everywhere, nothing changes); another team
//! pre-claims a victim's idempotency keys (no effect, nothing leaks); tenants are
//! checked. The stream attacks are in `hostile_streams.rs`; the helpers here serve
//! both.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::Daemon;
use crate::common::bystander::Bystander;
use crate::common::helpdesk::workload;

pub(crate) const ADMIN: Option<&str> = Some("root-token");
pub(crate) const OPS: Option<&str> = Some("ops-token");
const DEFAULT: Option<&str> = Some("default-token");
const MALLORY: Option<&str> = Some("mallory-token");
const GOOD: Option<&str> = Some("good-token");

/// The bystander's team: it reads only its own streams, so what the attackers
/// append never reaches it.
pub(crate) const GOOD_TEAM: &str =
    "[teams.good]\ntoken = \"good-token\"\nread_streams = [\"bystander-*\"]\n";

/// Starts the bystander and waits until its appends show, so the attack that follows
/// runs while it works.
pub(crate) async fn bystander(daemon: &Daemon) -> Bystander {
    let by = Bystander::start(daemon, GOOD).await;
    let started = Instant::now();
    while status_as(daemon, GOOD, "incident-details", 1)
        .await
        .and_then(|p| p["position"].as_i64())
        < Some(1)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the bystander never appended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    by
}

/// Ends an attack: the bystander kept up (through the attack and a second after)
/// and folded right, the daemon stayed small and stops in time.
pub(crate) async fn bystander_held(by: Bystander, mut daemon: Daemon) {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let report = by.finish(&daemon).await;
    assert!(
        report.latencies.len() >= 3,
        "the bystander hardly ran: {report:?}"
    );
    report.assert_p99_below(Duration::from_millis(100));
    daemon.assert_peak_rss_below(512 << 20);
    daemon.sigterm_within(Duration::from_secs(10));
}

pub(crate) async fn call(
    d: &Daemon,
    token: Option<&str>,
    method: Method,
    path: &str,
) -> (u16, Value) {
    d.request_as(token, method, path, None).await
}

pub(crate) async fn append_as(
    d: &Daemon,
    token: Option<&str>,
    stream: &str,
    body: Value,
) -> (u16, Value) {
    let path = format!("/streams/{stream}/events");
    d.request_as(
        token,
        Method::POST,
        &path,
        Some(body.to_string().into_bytes()),
    )
    .await
}

/// One event of `ty` with `extra` fields in the append body.
pub(crate) fn one(ty: &str, extra: Value) -> Value {
    let mut body = json!({"events": [{"type": ty, "data": {}}]});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    body
}

pub(crate) async fn deploy_as(d: &Daemon, token: Option<&str>, wasm: &str) -> Value {
    let bytes = std::fs::read(wasm).expect("component");
    let (code, body) = d
        .request_as(token, Method::POST, "/components", Some(bytes))
        .await;
    assert_eq!(code, 200, "deploy {wasm}: {body}");
    body
}

/// The status row of `token`'s version, if it sees one.
pub(crate) async fn status_as(
    d: &Daemon,
    token: Option<&str>,
    name: &str,
    version: u32,
) -> Option<Value> {
    let (code, list) = call(d, token, Method::GET, "/projections").await;
    assert_eq!(code, 200, "{list}");
    list.as_array()?
        .iter()
        .find(|p| p["name"] == name && p["version"] == version)
        .cloned()
}

/// Waits until `token`'s version pauses; returns its status.
pub(crate) async fn paused_as(d: &Daemon, token: Option<&str>, name: &str) -> Value {
    let started = Instant::now();
    loop {
        let p = status_as(d, token, name, 1).await.expect("deployed");
        if p["status"] == "paused" {
            return p;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not paused: {p}\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The events of a stream as the admin reads them (none if it does not exist).
pub(crate) async fn events_of(d: &Daemon, stream: &str) -> Vec<Value> {
    let (code, body) = call(d, ADMIN, Method::GET, &format!("/streams/{stream}")).await;
    if code == 404 {
        return Vec::new();
    }
    assert_eq!(code, 200, "{stream}: {body}");
    body["events"].as_array().cloned().unwrap_or_default()
}

/// Every route template the API serves, from the table its router is built from.
fn api_routes() -> Vec<String> {
    refract::api::route_paths()
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// The routes that take a component name, with a method each serves and a query.
const NAMED_ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/streams/{id}/aggregate/{projection}", ""),
    ("GET", "/streams/{id}/aggregate/{projection}", "?version=2"),
    ("GET", "/projections/{name}/docs/{id}", ""),
    ("GET", "/projections/{name}/docs/{id}", "?consistent=true"),
    ("GET", "/projections/{name}/docs/{id}", "?version=2"),
    (
        "GET",
        "/projections/{name}/docs/{id}",
        "?after=1&timeout_ms=10",
    ),
    ("GET", "/streams/{id}/aggregate/{projection}", "?after=1"),
    ("GET", "/projections/{name}/docs", ""),
    (
        "GET",
        "/projections/{name}/docs",
        "?prefix=incident&where=status:Pending&after_sequence=1",
    ),
    ("GET", "/projections/{name}/docs", "?collection=word"),
    ("GET", "/projections/{name}/docs/{collection}/{id}", ""),
    (
        "GET",
        "/projections/{name}/docs/{collection}/{id}",
        "?consistent=true",
    ),
    (
        "GET",
        "/projections/{name}/docs/{collection}/{id}",
        "?after=1&timeout_ms=10",
    ),
    ("POST", "/projections/{name}/versions/{version}/promote", ""),
    (
        "POST",
        "/projections/{name}/versions/{version}/promote",
        "?force=true",
    ),
    ("POST", "/projections/{name}/versions/{version}/retire", ""),
    ("POST", "/projections/{name}/versions/{version}/pause", ""),
    ("POST", "/projections/{name}/versions/{version}/resume", ""),
    ("DELETE", "/projections/{name}/versions/{version}", ""),
    ("POST", "/projections/{name}/versions/{version}/rewind", ""),
    (
        "POST",
        "/projections/{name}/versions/{version}/rewind",
        "?to=0&effects=replay",
    ),
    ("POST", "/projections/{name}/versions/{version}/rebuild", ""),
    (
        "GET",
        "/projections/{name}/versions/{version}/dead-letters",
        "",
    ),
    (
        "POST",
        "/projections/{name}/versions/{version}/dead-letters/replay",
        "",
    ),
];

/// The routes without a component name: what they show or change is the caller's
/// own (checked below: the listing, a deploy) or not namespaced (streams).
const UNNAMED_ROUTES: &[&str] = &[
    "/healthz",
    "/streams/{id}/events",
    "/streams/{id}",
    "/components",
    "/projections",
    // A team sees the nodes and only its own agents (`cluster_view`).
    "/cluster",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn default_with_a_token_reaches_nothing_of_another_team_on_any_route() {
    // Every route of the router is walked (a new route fails this until it is).
    let mut known: Vec<String> = NAMED_ROUTES.iter().map(|r| r.1.to_owned()).collect();
    known.extend(UNNAMED_ROUTES.iter().map(|r| (*r).to_owned()));
    for route in api_routes() {
        assert!(known.contains(&route), "route {route} is not walked");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = format!(
        "[teams.default]\ntoken = \"default-token\"\n[teams.ops]\ntoken = \"ops-token\"\n{GOOD_TEAM}"
    );
    let daemon = Daemon::start(&dir.path().join("data"), Some(&cfg));
    // Compiling is not the attack: the components are deployed before the bystander.
    deploy_as(&daemon, OPS, refract_test_artifacts::INCIDENT_DETAILS_V1).await;
    deploy_as(&daemon, OPS, refract_test_artifacts::INCIDENT_DETAILS_V2).await;
    // The unnamed routes: the listing shows nothing of ops, a deploy lands in
    // default's own namespace.
    let (code, list) = call(&daemon, DEFAULT, Method::GET, "/projections").await;
    assert_eq!((code, list.clone()), (200, json!([])), "{list}");
    deploy_as(
        &daemon,
        DEFAULT,
        refract_test_artifacts::INCIDENT_DETAILS_V1,
    )
    .await;
    let (_, list) = call(&daemon, DEFAULT, Method::GET, "/projections").await;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["name"], "incident-details", "{list}");

    let by = bystander(&daemon).await;
    let mut head = 0;
    for (id, events) in workload(11, 6) {
        let events: Vec<Value> = events
            .iter()
            .map(|(t, d)| json!({"type": t, "data": d}))
            .collect();
        let (code, out) = append_as(&daemon, OPS, &id, json!({"events": events})).await;
        assert_eq!(code, 200, "{out}");
        head = out["last_sequence"].as_i64().expect("sequence");
    }
    for version in [1, 2] {
        daemon
            .wait_caught_up_as(OPS, "incident-details", version, head)
            .await;
    }
    let before_v1 = status_as(&daemon, OPS, "incident-details", 1)
        .await
        .expect("v1");
    let before_v2 = status_as(&daemon, OPS, "incident-details", 2)
        .await
        .expect("v2");
    let doc_path = "/projections/incident-details/docs/incident-00000";
    let (code, doc_before) = call(&daemon, OPS, Method::GET, doc_path).await;
    assert_eq!(code, 200, "{doc_before}");

    // Every named route, with every way of spelling another team's component.
    let mut walked = 0;
    for (method, template, query) in NAMED_ROUTES {
        for version in [1, 2] {
            let path = |name: &str| {
                let p = template
                    .replace("{projection}", name)
                    .replace("{name}", name)
                    .replace("{id}", "incident-00000")
                    .replace("{collection}", "word")
                    .replace("{version}", &version.to_string());
                format!("{p}{query}")
            };
            let method: Method = method.parse().expect("method");
            // What a component that does not exist answers.
            let (_, absent) =
                call(&daemon, DEFAULT, method.clone(), &path("ops.nothing-here")).await;
            for name in [
                "ops.incident-details",
                "ops%2Eincident-details",
                "ops.incident-details..shadow",
                "ops..incident-details",
            ] {
                let (code, body) = call(&daemon, DEFAULT, method.clone(), &path(name)).await;
                assert_eq!(code, 404, "{method} {}: {body}", path(name));
                let text = body.to_string();
                assert!(
                    !text.contains("live") && !text.contains("standby"),
                    "{text}"
                );
                if name == "ops.incident-details" {
                    let same = absent
                        .to_string()
                        .replace("ops.nothing-here", "ops.incident-details");
                    assert_eq!(
                        text,
                        same,
                        "{method} {}: differs from an absent one",
                        path(name)
                    );
                }
                walked += 1;
            }
        }
    }
    assert_eq!(walked, NAMED_ROUTES.len() * 2 * 4);

    // Nothing of ops changed, and it still projects.
    let after_v1 = status_as(&daemon, OPS, "incident-details", 1)
        .await
        .expect("v1");
    let after_v2 = status_as(&daemon, OPS, "incident-details", 2)
        .await
        .expect("v2");
    // (`caught-up` is `catching-up` with no lag at that moment: the same state.)
    let state = |v: &Value| {
        v["state"]
            .as_str()
            .unwrap_or_default()
            .replace("caught-up", "catching-up")
    };
    assert_eq!(state(&after_v1), state(&before_v1), "{after_v1}");
    assert_eq!(state(&after_v2), state(&before_v2), "{after_v2}");
    assert_eq!(after_v1["status"], "running", "{after_v1}");
    assert!(after_v1["position"].as_i64() >= before_v1["position"].as_i64());
    let (_, doc_now) = call(&daemon, OPS, Method::GET, doc_path).await;
    assert_eq!(doc_now, doc_before);
    let (_, events) = workload(12, 1).remove(0);
    let events: Vec<Value> = events
        .iter()
        .map(|(t, d)| json!({"type": t, "data": d}))
        .collect();
    let (code, out) = append_as(&daemon, OPS, "incident-fresh", json!({"events": events})).await;
    assert_eq!(code, 200, "{out}");
    let head = out["last_sequence"].as_i64().expect("sequence");
    daemon
        .wait_caught_up_as(OPS, "incident-details", 1, head)
        .await;
    let fresh = "/projections/incident-details/docs/incident-fresh";
    let (code, doc) = call(&daemon, OPS, Method::GET, fresh).await;
    assert_eq!(code, 200, "ops's projection still projects: {doc}");
    bystander_held(by, daemon).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_team_pre_claiming_idempotency_keys_has_no_effect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = format!(
        "admin_token = \"root-token\"\n{GOOD_TEAM}\
         [teams.ops]\ntoken = \"ops-token\"\n[teams.mallory]\ntoken = \"mallory-token\"\n\
         [components.\"ops.emit-probe\".settings]\nmode = \"conflict\"\nspin = \"0\"\n\
         [components.\"mallory.emit-probe\".settings]\nmode = \"read-page\"\n"
    );
    let daemon = Daemon::start(&dir.path().join("data"), Some(&cfg));
    // Compiling is not the attack: mallory's own copy (it only reads) compiles the
    // component before the bystander starts, so ops's deploy below is a cache hit.
    deploy_as(&daemon, MALLORY, refract_test_artifacts::EMIT_PROBE).await;

    // Over HTTP: mallory uses a key first; ops's append with it still happens, and
    // ops's own reuse names only ops's stream.
    let key = json!({"idempotency_key": "k-shared"});
    let (code, m1) = append_as(
        &daemon,
        MALLORY,
        "payroll-secret",
        one("Claim", key.clone()),
    )
    .await;
    assert_eq!(code, 200, "{m1}");
    let (code, o1) = append_as(&daemon, OPS, "ops-orders", one("Ordered", key.clone())).await;
    assert_eq!(code, 200, "{o1}");
    assert!(
        o1["first_sequence"].as_i64() > m1["last_sequence"].as_i64(),
        "{o1}"
    );
    assert_eq!(events_of(&daemon, "ops-orders").await.len(), 1);
    let (code, again) = append_as(&daemon, OPS, "ops-orders", one("Ordered", key.clone())).await;
    assert_eq!((code, &again), (200, &o1), "a retry is still idempotent");
    let (code, reused) = append_as(&daemon, OPS, "ops-other", one("Ordered", key.clone())).await;
    assert_eq!(code, 409, "{reused}");
    assert_eq!(reused["code"], "idempotency_key_reused", "{reused}");
    let text = reused.to_string();
    assert!(
        text.contains("ops-orders") && !text.contains("payroll"),
        "{text}"
    );
    let (code, m2) = append_as(&daemon, MALLORY, "payroll-secret", one("Claim", key)).await;
    assert_eq!(
        (code, &m2),
        (200, &m1),
        "mallory's own key still answers it"
    );

    // Emits: mallory claims the keys ops's subscription will use (`conflict-<seq>`
    // of the pokes appended next), three on a decoy stream and three on `hot`.
    let (_, list) = call(&daemon, ADMIN, Method::GET, "/streams/ops-orders").await;
    let mut head = list["events"][0]["sequence"].as_i64().expect("head");
    let claims = 6;
    let first_poke = head + claims + 1;
    for i in 0..claims {
        let stream = if i < 3 { "mallory-decoy" } else { "hot" };
        let key = json!({"idempotency_key": format!("conflict-{}", first_poke + i)});
        let (code, body) = append_as(&daemon, MALLORY, stream, one("Claim", key)).await;
        assert_eq!(code, 200, "{body}");
        head = body["last_sequence"].as_i64().expect("sequence");
    }
    for i in 0..claims {
        let (code, body) =
            append_as(&daemon, OPS, &format!("poke-{i}"), one("Poke", json!({}))).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["last_sequence"].as_i64(), Some(head + 1 + i), "{body}");
    }
    assert_eq!(head + 1, first_poke);
    let by = bystander(&daemon).await;
    deploy_as(&daemon, OPS, refract_test_artifacts::EMIT_PROBE).await;
    let started = Instant::now();
    let hot = loop {
        let p = status_as(&daemon, OPS, "emit-probe", 1)
            .await
            .expect("deployed");
        assert!(p["status"] != "paused", "the victim paused: {p}");
        let hot = events_of(&daemon, "hot").await;
        let seen = hot.iter().filter(|e| e["type"] == "Seen").count();
        if seen as i64 == claims {
            break hot;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{seen} of {claims} emits landed: {p}\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        hot.len() as i64,
        claims + 3,
        "mallory's three and ops's six"
    );
    let p = status_as(&daemon, OPS, "emit-probe", 1)
        .await
        .expect("deployed");
    assert_eq!(p["status"], "running", "{p}");
    assert!(!p.to_string().contains("mallory"), "{p}");
    bystander_held(by, daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tenants_are_checked_for_form_and_restricted_to_the_teams_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = format!(
        "admin_token = \"root-token\"\n{GOOD_TEAM}[teams.ops]\ntoken = \"ops-token\"\ntenants = [\"acme\", \"acme.eu-1\"]\n\
         [teams.mallory]\ntoken = \"mallory-token\"\n"
    );
    let daemon = Daemon::start(&dir.path().join("data"), Some(&cfg));
    let by = bystander(&daemon).await;
    let tenant = |t: &str| json!({"tenant": t});
    for (token, t, code, says) in [
        (OPS, "acme", 200, ""),
        (OPS, "acme.eu-1", 200, ""),
        (OPS, "globex", 400, "not one of this team's tenants"),
        (MALLORY, "globex", 200, ""),
        (MALLORY, "a b", 400, "only A-Z, a-z, 0-9"),
        (MALLORY, "", 400, "1 to 64"),
        (MALLORY, &"x".repeat(65), 400, "1 to 64"),
        (MALLORY, "x\nERROR refract: forged", 400, "only A-Z"),
        (MALLORY, "tenant/../ops", 400, "only A-Z"),
    ] {
        let (got, body) = append_as(&daemon, token, "t-1", one("T", tenant(t))).await;
        assert_eq!(got, code, "{t:?}: {body}");
        assert!(body.to_string().contains(says), "{t:?}: {body}");
    }
    let stored: Vec<Value> = events_of(&daemon, "t-1")
        .await
        .iter()
        .map(|e| e["tenant"].clone())
        .collect();
    assert_eq!(stored, [json!("acme"), json!("acme.eu-1"), json!("globex")]);
    bystander_held(by, daemon).await;
}
