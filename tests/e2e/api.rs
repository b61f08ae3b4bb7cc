//! The HTTP API's contracts: optimistic concurrency, idempotency, and bad input that
//! gets a 400 naming the problem and writes nothing. Also the CLI over the API.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::Daemon;

fn event(ty: &str) -> (String, Value) {
    (ty.to_owned(), json!({"n": 1}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_with_the_same_expected_version_one_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Arc::new(Daemon::start(&dir.path().join("data"), None));
    for s in 0..25 {
        let id = format!("race-{s}");
        assert_eq!(daemon.append(&id, Some(0), &[event("Opened")]).await.0, 200);
        let (two, one) = ([event("A"), event("A2")], [event("B")]);
        let (a, b) = tokio::join!(
            daemon.append(&id, Some(1), &two),
            daemon.append(&id, Some(1), &one)
        );
        let mut codes = [a.0, b.0];
        codes.sort();
        assert_eq!(codes, [200, 409], "{id}: {a:?} {b:?}");
        let loser = if a.0 == 409 { &a.1 } else { &b.1 };
        let winner_len = if a.0 == 200 { 2 } else { 1 };
        assert_eq!(loser["current_version"], 1 + winner_len, "{loser}");
        assert!(
            loser["error"].as_str().unwrap_or_default().contains(&id),
            "{loser}"
        );
        let (_, stream) = daemon.get(&format!("/streams/{id}")).await;
        assert_eq!(stream["version"], 1 + winner_len);
        assert_eq!(
            stream["events"].as_array().map(Vec::len),
            Some(1 + winner_len as usize)
        );
    }
    // expected_version 0 on an existing stream is a conflict too.
    let (code, body) = daemon.append("race-0", Some(0), &[event("X")]).await;
    assert_eq!(code, 409, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_idempotency_key_appends_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), None);
    let body = json!({"idempotency_key": "transfer-7", "events": [{"type": "Paid", "data": {"amount": 5}}]});
    let (c1, first) = daemon.post_json("/streams/acct-1/events", &body).await;
    let (c2, again) = daemon.post_json("/streams/acct-1/events", &body).await;
    assert_eq!((c1, c2), (200, 200));
    assert_eq!(first, again);
    let (_, stream) = daemon.get("/streams/acct-1").await;
    assert_eq!(stream["version"], 1);
    // The same key on another stream is refused and writes nothing.
    let (c3, other) = daemon.post_json("/streams/acct-2/events", &body).await;
    assert_eq!(c3, 409, "{other}");
    assert!(
        other["error"]
            .as_str()
            .unwrap_or_default()
            .contains("transfer-7")
    );
    assert_eq!(daemon.get("/streams/acct-2").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_400_naming_the_problem_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), None);
    let post = |body: &'static str| {
        daemon.request(
            Method::POST,
            "/streams/s-1/events",
            Some(body.as_bytes().to_vec()),
        )
    };

    let cases: [(&str, &str); 6] = [
        (r#"{"events": [{"type": "A", "data": {}}"#, "EOF"),
        (
            r#"{"events": [{"type": "A", "data": {}}], "expectedVersion": 1}"#,
            "unknown field `expectedVersion`",
        ),
        (
            r#"{"events": [{"type": "A", "data": {}, "dta": 1}]}"#,
            "unknown field `dta`",
        ),
        (r#"{"events": [{"type": "A"}]}"#, "missing field `data`"),
        (r#"{"events": []}"#, "`events` is empty"),
        (
            r#"{"events": [{"type": "", "data": {}}]}"#,
            "events[0].type is empty",
        ),
    ];
    for (body, needle) in cases {
        let (code, resp) = post(body).await;
        assert_eq!(code, 400, "{body}: {resp}");
        let msg = resp["error"].as_str().unwrap_or_default();
        assert!(
            msg.contains(needle),
            "{body}: {msg:?} should name {needle:?}"
        );
    }
    assert_eq!(
        daemon.get("/streams/s-1").await.0,
        404,
        "nothing was written"
    );

    let uploads: [(Vec<u8>, &str); 4] = [
        (b"hello, not wasm".to_vec(), "magic bytes"),
        (
            b"\0asm\x01\0\0\0".to_vec(),
            "core WebAssembly module, not a component",
        ),
        // A valid but empty component: it does not implement the projector world.
        (
            b"\0asm\x0d\0\x01\0".to_vec(),
            "refract:projection/projection@1.0.0",
        ),
        (Vec::new(), "empty upload"),
    ];
    for (wasm, needle) in uploads {
        let (code, resp) = daemon
            .request(Method::POST, "/components", Some(wasm))
            .await;
        assert_eq!(code, 400, "{resp}");
        let msg = resp["error"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{msg:?} should name {needle:?}");
    }
    assert_eq!(
        daemon.get("/projections").await.1,
        json!([]),
        "no component registered"
    );
    let stored = std::fs::read_dir(daemon.data_dir.join("components"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(stored, 0, "no component file kept");

    assert_eq!(daemon.get("/nowhere").await.0, 404);
    let (code, resp) = daemon.get("/projections/x/docs/y?version=two").await;
    assert_eq!(code, 400);
    assert!(
        resp["error"]
            .as_str()
            .unwrap_or_default()
            .contains("version"),
        "{resp}"
    );
    assert_eq!(daemon.get("/projections/nothing/docs/x").await.0, 404);
    assert_eq!(daemon.get("/healthz").await, (200, json!({"status": "ok"})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_verbs_drive_the_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), None);
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_refract"))
            .args(["--url", &daemon.url])
            .args(args)
            .output()
            .expect("run refract");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = cli(&["deploy", refract_test_artifacts::INCIDENT_DETAILS_V1]);
    assert!(ok, "{err}");
    assert!(out.contains("\"incident-details\""), "{out}");
    let data = r#"{"customer_id": "c1", "contact": {}, "description": "d", "logged_by": "a"}"#;
    let append = [
        "append",
        "inc-1",
        "--type",
        "IncidentLogged",
        "--data",
        data,
        "--expected-version",
        "0",
    ];
    let (ok, out, err) = cli(&append);
    assert!(ok, "{err}");
    assert!(out.contains("\"stream_version\":1"), "{out}");
    let appended: Value = serde_json::from_str(&out).expect("append JSON");
    let last = appended["last_sequence"].to_string();
    let (ok, _, err) = cli(&append);
    assert!(
        !ok && err.contains("409"),
        "a conflict fails the command: {err}"
    );
    // Read your write: no waiting loop of the caller's own.
    let (ok, out, err) = cli(&["get", "incident-details", "inc-1", "--after", &last]);
    assert!(ok, "{err}");
    let doc: Value = serde_json::from_str(&out).expect("document JSON");
    assert_eq!(doc["status"], "Pending", "{out}");
    let (ok, _, err) = cli(&[
        "get",
        "incident-details",
        "inc-1",
        "--after",
        "99999",
        "--timeout-ms",
        "10",
    ]);
    assert!(
        !ok && err.contains("504"),
        "a wait that runs out fails the command: {err}"
    );
    let (ok, out, err) = cli(&["get", "incident-details", "inc-1"]);
    assert!(ok, "{err}");
    let doc: Value = serde_json::from_str(&out).expect("document JSON");
    assert_eq!(
        (&doc["id"], &doc["status"]),
        (&json!("inc-1"), &json!("Pending"))
    );
    let (ok, out, _) = cli(&["status"]);
    assert!(
        ok && out.contains("incident-details") && out.contains("running"),
        "{out}"
    );
}
