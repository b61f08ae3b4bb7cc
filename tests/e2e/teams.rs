//! Teams: every route needs a token when teams are configured (401 without one or
//! with a wrong one); a team sees and touches only its own components, and another
//! team's names answer 404, never revealing what exists.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::Daemon;
use crate::common::helpdesk::workload;

const CONFIG: &str = r#"
admin_token = "root-token"
[teams.alpha]
token = "alpha-token"
[teams.beta]
# sha256("beta-token")
token_sha256 = "863d63c0bd3a94bfca84ed2063a7355a226faff82ca50b90158bf183aa1a9e61"
append = false
read_events = false
max_components = 2
"#;

const ALPHA: Option<&str> = Some("alpha-token");
const BETA: Option<&str> = Some("beta-token");
const ADMIN: Option<&str> = Some("root-token");

async fn call(d: &Daemon, token: Option<&str>, method: Method, path: &str) -> (u16, Value) {
    let body = match method {
        Method::POST => Some(b"{}".to_vec()),
        _ => None,
    };
    d.request_as(token, method, path, body).await
}

async fn deploy(d: &Daemon, token: Option<&str>, wasm: &str) -> (u16, Value) {
    let bytes = std::fs::read(wasm).expect("component");
    d.request_as(token, Method::POST, "/components", Some(bytes))
        .await
}

fn names(list: &Value) -> Vec<String> {
    let mut out: Vec<String> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|p| format!("{}@{}", p["name"].as_str().unwrap_or(""), p["version"]))
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_see_and_touch_only_their_own_and_every_route_needs_a_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(&dir.path().join("data"), Some(CONFIG));

    // Every route but the health check asks for a token.
    let routes = [
        (Method::POST, "/streams/s-1/events"),
        (Method::GET, "/streams/s-1"),
        (Method::GET, "/streams/s-1/aggregate/incident-details"),
        (Method::POST, "/components"),
        (Method::GET, "/projections"),
        (Method::GET, "/projections/incident-details/docs/s-1"),
        (
            Method::POST,
            "/projections/incident-details/versions/1/promote",
        ),
        (
            Method::POST,
            "/projections/incident-details/versions/1/retire",
        ),
        (Method::DELETE, "/projections/incident-details/versions/1"),
        (
            Method::POST,
            "/projections/incident-details/versions/1/rewind",
        ),
    ];
    for (method, path) in &routes {
        for token in [None, Some("wrong-token")] {
            let (code, body) = call(&d, token, method.clone(), path).await;
            assert_eq!(code, 401, "{method} {path} with {token:?}: {body}");
        }
    }
    assert_eq!(call(&d, None, Method::GET, "/healthz").await.0, 200);

    // Both teams deploy incident-details: two namespaces, two tables.
    for token in [ALPHA, BETA] {
        let (code, body) = deploy(&d, token, refract_test_artifacts::INCIDENT_DETAILS_V1).await;
        assert_eq!(
            (code, &body["name"]),
            (200, &json!("incident-details")),
            "{body}"
        );
    }
    let (code, body) = deploy(&d, ALPHA, refract_test_artifacts::INCIDENT_DETAILS_V2).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = deploy(&d, BETA, refract_test_artifacts::STREAM_COUNTER).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = deploy(&d, BETA, refract_test_artifacts::INCIDENT_DETAILS_V2).await;
    assert_eq!(code, 409, "beta may have 2 components: {body}");

    // Appending and reading events are per team.
    let mut head = 0;
    for (id, events) in workload(3, 20) {
        let events: Vec<Value> = events
            .iter()
            .map(|(t, d)| json!({"type": t, "data": d}))
            .collect();
        let body = json!({"expected_version": 0, "events": events})
            .to_string()
            .into_bytes();
        let path = format!("/streams/{id}/events");
        let (code, out) = d
            .request_as(BETA, Method::POST, &path, Some(body.clone()))
            .await;
        assert_eq!(code, 403, "beta may not append: {out}");
        let (code, out) = d.request_as(ALPHA, Method::POST, &path, Some(body)).await;
        assert_eq!(code, 200, "{out}");
        head = out["last_sequence"].as_i64().expect("sequence");
    }
    assert_eq!(
        call(&d, BETA, Method::GET, "/streams/incident-00001")
            .await
            .0,
        403
    );
    assert_eq!(
        call(&d, ALPHA, Method::GET, "/streams/incident-00001")
            .await
            .0,
        200
    );

    // Each team lists its own, by the names it knows; the admin sees everything.
    let (_, alpha) = call(&d, ALPHA, Method::GET, "/projections").await;
    assert_eq!(names(&alpha), ["incident-details@1", "incident-details@2"]);
    let (_, beta) = call(&d, BETA, Method::GET, "/projections").await;
    assert_eq!(names(&beta), ["incident-details@1", "stream-counter@1"]);
    let (_, all) = call(&d, ADMIN, Method::GET, "/projections").await;
    assert_eq!(
        names(&all),
        [
            "alpha.incident-details@1",
            "alpha.incident-details@2",
            "beta.incident-details@1",
            "beta.stream-counter@1"
        ]
    );

    // Another team's names answer 404 on every route; its own work.
    let doc = "/projections/incident-details/docs/incident-00001";
    for _ in 0..300 {
        if call(&d, BETA, Method::GET, doc).await.0 == 200
            && call(&d, ALPHA, Method::GET, doc).await.0 == 200
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        call(&d, BETA, Method::GET, doc).await,
        call(&d, ALPHA, Method::GET, doc).await
    );
    let foreign = [
        (BETA, Method::GET, format!("{doc}?version=2")),
        (
            BETA,
            Method::POST,
            "/projections/incident-details/versions/2/promote".into(),
        ),
        (
            BETA,
            Method::POST,
            "/projections/incident-details/versions/2/retire".into(),
        ),
        (
            BETA,
            Method::DELETE,
            "/projections/incident-details/versions/2".into(),
        ),
        (
            BETA,
            Method::POST,
            "/projections/incident-details/versions/2/rewind".into(),
        ),
        (
            ALPHA,
            Method::GET,
            "/projections/stream-counter/docs/incident-00001".into(),
        ),
        (
            ALPHA,
            Method::POST,
            "/projections/stream-counter/versions/1/promote".into(),
        ),
        (
            ALPHA,
            Method::POST,
            "/projections/stream-counter/versions/1/retire".into(),
        ),
        (
            ALPHA,
            Method::DELETE,
            "/projections/stream-counter/versions/1".into(),
        ),
        (
            ALPHA,
            Method::POST,
            "/projections/stream-counter/versions/1/rewind".into(),
        ),
        (
            ALPHA,
            Method::GET,
            "/streams/incident-00001/aggregate/stream-counter".into(),
        ),
    ];
    for (token, method, path) in foreign {
        let (code, body) = call(&d, token, method.clone(), &path).await;
        assert_eq!(code, 404, "{token:?} {method} {path}: {body}");
        let text = body.to_string();
        assert!(
            !text.contains("alpha.") && !text.contains("beta."),
            "{method} {path}: no team named: {text}"
        );
    }
    // Beta may not read events (`read_events = false`), so not through its own
    // projection's aggregate either.
    let (code, body) = call(
        &d,
        BETA,
        Method::GET,
        "/streams/incident-00001/aggregate/incident-details",
    )
    .await;
    assert_eq!(code, 403, "{body}");
    // Alpha's v2 is untouched by all that, and alpha may act on it.
    let (_, alpha) = call(&d, ALPHA, Method::GET, "/projections").await;
    let v2 = alpha
        .as_array()
        .and_then(|l| l.iter().find(|p| p["version"] == 2))
        .cloned();
    assert_ne!(
        v2.as_ref().map(|p| &p["state"]),
        Some(&json!("retired")),
        "{alpha}"
    );
    d.wait_caught_up_as(ALPHA, "incident-details", 2, head)
        .await;
    let (code, body) = call(
        &d,
        ALPHA,
        Method::POST,
        "/projections/incident-details/versions/2/promote",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    // The admin acts on any team's by the internal name.
    let (code, body) = call(
        &d,
        ADMIN,
        Method::POST,
        "/projections/beta.stream-counter/versions/1/rewind",
    )
    .await;
    assert_eq!(
        code, 409,
        "a projection is not rewound, but the admin reaches it: {body}"
    );

    // A team rebuilds its own version: the same documents again, from the first event.
    let before = call(&d, ALPHA, Method::GET, doc).await;
    let (code, body) = call(
        &d,
        ALPHA,
        Method::POST,
        "/projections/incident-details/versions/1/rebuild",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    d.wait_caught_up_as(ALPHA, "incident-details", 1, head)
        .await;
    assert_eq!(
        call(&d, ALPHA, Method::GET, doc).await,
        before,
        "rebuilt to the same document"
    );
    let (_, alpha) = call(&d, ALPHA, Method::GET, "/projections").await;
    let v1 = alpha
        .as_array()
        .and_then(|l| l.iter().find(|p| p["version"] == 1))
        .cloned();
    let applied = v1.as_ref().and_then(|p| p["events_applied"].as_i64());
    assert!(applied <= Some(head), "counted from zero again: {v1:?}");
}
