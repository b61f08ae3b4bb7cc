//! The help-desk scenario end to end: 10,000+ events over 1,000 streams appended over
//! HTTP, projected by the compiled `incident-details` component, every document
//! compared with the SDK's native fold of the same events.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use incident_details::IncidentDetailsProjection;
use serde_json::Value;

use crate::common::Daemon;
use crate::common::helpdesk::{sdk_event, workload};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_events_project_like_the_native_fold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Arc::new(Daemon::start(&dir.path().join("data"), None));
    let deployed = daemon
        .deploy(refract_test_artifacts::INCIDENT_DETAILS_V1)
        .await;
    assert_eq!(deployed["name"], "incident-details");
    assert_eq!(deployed["version"], 1);

    let streams = workload(7, 1000);
    let total: usize = streams.iter().map(|(_, e)| e.len()).sum();
    assert!(total >= 10_000, "only {total} events");

    // Rounds interleave the streams: round r appends event r of every stream that
    // has one, with the optimistic-concurrency check, 16 requests at a time.
    let longest = streams.iter().map(|(_, e)| e.len()).max().unwrap_or(0);
    let mut native = Vec::with_capacity(total);
    for round in 0..longest {
        let batch: Vec<_> = streams.iter().filter(|(_, e)| e.len() > round).collect();
        for chunk in batch.chunks(16) {
            let mut tasks = tokio::task::JoinSet::new();
            for (id, events) in chunk {
                let (d, id, event) = (daemon.clone(), id.clone(), events[round].clone());
                tasks.spawn(async move {
                    let (status, body) = d
                        .append(&id, Some(round as u64), std::slice::from_ref(&event))
                        .await;
                    assert_eq!(status, 200, "{id} round {round}: {body}");
                    assert_eq!(body["stream_version"], round as u64 + 1);
                    (
                        id,
                        event,
                        body["first_sequence"].as_i64().expect("sequence"),
                    )
                });
            }
            while let Some(done) = tasks.join_next().await {
                let (id, (ty, data), seq) = done.expect("append task");
                native.push(sdk_event(seq, &id, round as u64 + 1, &ty, &data));
            }
        }
    }
    native.sort_by_key(|e| e.sequence);
    let head = native.last().map(|e| e.sequence as i64).expect("events");
    assert_eq!(head as usize, total, "sequences are dense from 1");

    let status = daemon
        .wait_caught_up("incident-details", 1, head, Duration::from_secs(120))
        .await;
    assert_eq!(status["events_applied"], total as u64);
    assert_eq!(status["lag"], 0);
    assert!(status["error"].is_null(), "{status}");

    let expected: BTreeMap<String, Value> =
        refract_guest::testing::project::<IncidentDetailsProjection>(&native).expect("native fold");
    assert_eq!(expected.len(), 1000);
    for (id, want) in &expected {
        let (code, got) = daemon
            .get(&format!("/projections/incident-details/docs/{id}"))
            .await;
        assert_eq!(code, 200, "{id}: {got}");
        assert_eq!(&got, want, "document {id}");
    }
    // A specific version answers the same; a missing document is a 404.
    let (code, v1) = daemon
        .get("/projections/incident-details/docs/incident-00003?version=1")
        .await;
    assert_eq!((code, &v1), (200, &expected["incident-00003"]));
    assert_eq!(
        daemon
            .get("/projections/incident-details/docs/nope")
            .await
            .0,
        404
    );
    assert_eq!(
        daemon
            .get("/projections/incident-details/docs/incident-00003?version=9")
            .await
            .0,
        404
    );

    // The stream reads back as appended.
    let (code, stream) = daemon.get("/streams/incident-00042").await;
    assert_eq!(code, 200);
    let appended = &streams[42].1;
    assert_eq!(stream["version"], appended.len() as u64);
    for (got, (ty, data)) in stream["events"]
        .as_array()
        .expect("events")
        .iter()
        .zip(appended)
    {
        assert_eq!(
            (&got["type"], &got["data"]),
            (&Value::from(ty.as_str()), data)
        );
    }
}
