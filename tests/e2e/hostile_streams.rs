//! Attacks on stream permissions (issue 11, point 3), each beside a well-behaved team
//! (the bystander): a subscription emits and reads outside its team's streams (the
//! guest's error, nothing appended or read), the same over HTTP and through
//! aggregates (refused, naming only what was asked); a team is fed only the streams
//! it may read; a dead-letter replay applies nothing of a stream it may no longer
//! read.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::Daemon;
use crate::common::helpdesk::workload;
use crate::hostile_perms::{
    ADMIN, GOOD_TEAM, OPS, append_as, bystander, bystander_held, call, deploy_as, events_of, one,
    paused_as, status_as,
};

/// A daemon where ops may append only to `orders-*` and read `read` streams, and
/// runs emit-probe in `mode`.
fn ops_config(mode: &str, read: &str) -> String {
    format!(
        "admin_token = \"root-token\"\n{GOOD_TEAM}\
         [teams.ops]\ntoken = \"ops-token\"\nappend_streams = [\"orders-*\"]\n\
         read_streams = [{read}]\n\
         [components.\"ops.emit-probe\"]\nattempts = 2\n\
         [components.\"ops.emit-probe\".settings]\nmode = \"{mode}\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn emits_appends_and_reads_outside_the_teams_streams_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = ops_config("echo", "\"poke-*\", \"orders-*\"");
    let daemon = Daemon::start(&dir.path().join("data"), Some(&cfg));
    // Compiling is not the attack: the components are deployed before the bystander.
    deploy_as(&daemon, OPS, refract_test_artifacts::EMIT_PROBE).await;
    deploy_as(&daemon, OPS, refract_test_artifacts::INCIDENT_DETAILS_V1).await;
    let by = bystander(&daemon).await;
    let (code, body) = append_as(&daemon, ADMIN, "long", one("Item", json!({}))).await;
    assert_eq!(code, 200, "{body}");

    // Emit: the subscription's `emit` to `echo` is the guest's error; nothing lands.
    let (code, body) = append_as(&daemon, ADMIN, "poke-a-0", one("Poke", json!({}))).await;
    assert_eq!(code, 200, "{body}");
    let p = paused_as(&daemon, OPS, "emit-probe").await;
    let message = p["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("emit to echo: team ops may not append to this stream"),
        "{p}"
    );
    assert_eq!(p["error"]["fault"], "guest", "{p}");
    assert!(
        events_of(&daemon, "echo").await.is_empty(),
        "nothing appended"
    );

    // The same over HTTP; the refusal reads the same whether the stream exists.
    let (code, body) = append_as(&daemon, OPS, "echo", one("Echoed", json!({}))).await;
    assert_eq!(code, 403, "{body}");
    let (code, body) = append_as(&daemon, OPS, "orders-1", one("Ordered", json!({}))).await;
    assert_eq!(code, 200, "{body}");
    let (code, exists) = call(&daemon, OPS, Method::GET, "/streams/long").await;
    assert_eq!(code, 403, "{exists}");
    let (code, absent) = call(&daemon, OPS, Method::GET, "/streams/lonh").await;
    assert_eq!(code, 403, "{absent}");
    assert_eq!(
        exists.to_string().replace("long", "lonh"),
        absent.to_string()
    );
    assert!(!exists.to_string().contains("version"), "{exists}");
    assert_eq!(
        call(&daemon, OPS, Method::GET, "/streams/orders-1").await.0,
        200
    );
    let (code, body) = call(
        &daemon,
        OPS,
        Method::GET,
        "/streams/long/aggregate/incident-details",
    )
    .await;
    assert_eq!(code, 403, "{body}");

    // Fed only what it may read: ops's incident-details projects orders-* and
    // passes over the same incident under payroll-* (counted as skipped).
    let (_, events) = workload(3, 1).remove(0);
    let events: Vec<Value> = events
        .iter()
        .map(|(t, d)| json!({"type": t, "data": d}))
        .collect();
    let n = events.len() as u64;
    let mut head = 0;
    for stream in ["payroll-00001", "orders-00001"] {
        let (code, out) = append_as(&daemon, ADMIN, stream, json!({"events": events})).await;
        assert_eq!(code, 200, "{out}");
        head = out["last_sequence"].as_i64().expect("sequence");
    }
    daemon
        .wait_caught_up_as(OPS, "incident-details", 1, head)
        .await;
    let docs = "/projections/incident-details/docs";
    let (code, body) = call(&daemon, OPS, Method::GET, &format!("{docs}/orders-00001")).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = call(&daemon, OPS, Method::GET, &format!("{docs}/payroll-00001")).await;
    assert_eq!(code, 404, "{body}");
    let p = status_as(&daemon, OPS, "incident-details", 1)
        .await
        .expect("v1");
    assert!(p["events_skipped"].as_u64() >= Some(n), "{p}");
    assert_eq!(p["events_applied"].as_u64(), Some(n), "{p}");
    // Its aggregate answers only for streams it is fed, whoever asks.
    let (code, body) = call(
        &daemon,
        ADMIN,
        Method::GET,
        "/streams/payroll-00001/aggregate/ops.incident-details",
    )
    .await;
    assert_eq!(code, 403, "{body}");
    let (code, body) = call(
        &daemon,
        OPS,
        Method::GET,
        "/streams/orders-00001/aggregate/incident-details",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["version"].as_u64(), Some(n), "{body}");
    let (code, body) = call(
        &daemon,
        OPS,
        Method::GET,
        &format!("{docs}/payroll-00001?consistent=true"),
    )
    .await;
    assert_eq!(code, 404, "consistent reads are fed the same: {body}");
    bystander_held(by, daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_stream_outside_the_teams_streams_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = ops_config("read-page", "\"poke-*\"");
    let daemon = Daemon::start(&dir.path().join("data"), Some(&cfg));
    deploy_as(&daemon, OPS, refract_test_artifacts::EMIT_PROBE).await;
    let by = bystander(&daemon).await;
    for _ in 0..3 {
        let (code, body) = append_as(&daemon, ADMIN, "long", one("Item", json!({}))).await;
        assert_eq!(code, 200, "{body}");
    }
    let (code, body) = append_as(&daemon, ADMIN, "poke-a-0", one("Poke", json!({}))).await;
    assert_eq!(code, 200, "{body}");
    let p = paused_as(&daemon, OPS, "emit-probe").await;
    let message = p["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("read-stream-page: team ops may not read stream \"long\""),
        "{p}"
    );
    // Nothing of the stream was read: not even its version.
    assert!(
        !message.contains("version 3") && !message.contains("Item"),
        "{p}"
    );
    assert_eq!(p["error"]["fault"], "guest", "{p}");
    bystander_held(by, daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_of_a_stream_the_team_may_no_longer_read_are_not_replayed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let letters = "[components.value-sum]\non_error = \"dead-letter\"\nattempts = 1\n";
    let daemon = Daemon::start(&data, Some(letters));
    daemon.deploy(refract_test_artifacts::VALUE_SUM).await;
    let poison = ("ValueAdded".to_owned(), json!({"value": "three"}));
    let (code, body) = daemon.append("secret-1", None, &[poison]).await;
    assert_eq!(code, 200, "{body}");
    let head = body["last_sequence"].as_i64().expect("sequence");
    let p = daemon
        .wait_caught_up("value-sum", 1, head, Duration::from_secs(60))
        .await;
    assert_eq!(p["dead_letter_count"], 1, "{p}");
    drop(daemon);

    // The team may now read only `open-*`: its letter of `secret-1` is not applied
    // again (it stays, counted as missing), whatever its code would do with it.
    let cfg = format!("{letters}[teams.default]\nread_streams = [\"open-*\"]\n");
    let daemon = Daemon::start(&data, Some(&cfg));
    let (code, body) = daemon
        .post_json(
            "/projections/value-sum/versions/1/dead-letters/replay",
            &json!({}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        (&body["replayed"], &body["still_failing"], &body["missing"]),
        (&json!(0), &json!(0), &json!(1)),
        "{body}"
    );
    assert_eq!(
        daemon.projection("value-sum", 1).await["dead_letter_count"],
        1
    );
}
