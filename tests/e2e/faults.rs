//! A guest error pauses only its own projection, with the component, the event and
//! the message in `GET /projections`; a projection beside it keeps up.

use std::time::Duration;

use serde_json::json;

use crate::common::Daemon;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_error_pauses_only_its_projection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), None);
    daemon
        .deploy(refract_test_artifacts::INCIDENT_DETAILS_V1)
        .await;
    daemon.deploy(refract_test_artifacts::STREAM_COUNTER).await;

    let logged = |n: u32| {
        (
            "IncidentLogged".to_owned(),
            json!({"customer_id": format!("c{n}"), "contact": {}, "description": "d", "logged_by": "a"}),
        )
    };
    let log_incidents = |range: std::ops::Range<u32>| {
        let (daemon, logged) = (&daemon, &logged);
        async move {
            for n in range {
                let (code, body) = daemon
                    .append(&format!("ok-{n}"), Some(0), &[logged(n)])
                    .await;
                assert_eq!(code, 200, "{body}");
            }
        }
    };
    log_incidents(0..5).await;
    daemon
        .wait_caught_up("incident-details", 1, 5, Duration::from_secs(30))
        .await;

    // incident-details cannot decode this one (no customer_id); stream-counter reads no field.
    let bad = (
        "IncidentLogged".to_owned(),
        json!({"contact": {}, "description": "d", "logged_by": "a"}),
    );
    let (code, body) = daemon.append("broken", None, &[bad]).await;
    assert_eq!(code, 200);
    let bad_seq = body["first_sequence"].as_i64().expect("seq");
    log_incidents(5..10).await;

    let counter = daemon
        .wait_caught_up("stream-counter", 1, 11, Duration::from_secs(30))
        .await;
    assert_eq!(counter["status"], "running");
    let mut paused = daemon.projection("incident-details", 1).await;
    for _ in 0..500 {
        if paused["status"] == "paused" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        paused = daemon.projection("incident-details", 1).await;
    }
    assert_eq!(paused["status"], "paused", "{paused}");
    let error = &paused["error"];
    assert_eq!(error["component"], "incident-details@v1", "{error}");
    assert_eq!(error["event_sequence"], bad_seq, "{error}");
    assert_eq!(error["fault"], "guest");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("IncidentLogged") && message.contains("customer_id"),
        "{message}"
    );
    assert!(
        paused["position"].as_i64() < Some(bad_seq),
        "the failing page wrote nothing: {paused}"
    );

    // The daemon and the other projection go on.
    assert_eq!(
        daemon.append("ok-late", Some(0), &[logged(99)]).await.0,
        200
    );
    let counter = daemon
        .wait_caught_up("stream-counter", 1, 12, Duration::from_secs(30))
        .await;
    assert_eq!(counter["events_applied"], 12);
    let (code, doc) = daemon.get("/projections/stream-counter/docs/broken").await;
    assert_eq!((code, &doc["total"]), (200, &json!(1)));
    assert_eq!(daemon.get("/healthz").await.0, 200);
}
