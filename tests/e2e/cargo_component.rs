//! A sample built by cargo-component (`cargo component build --release`: a
//! `wasm32-wasip1` module that cargo-component adapts into a component with the WASI
//! preview1 adapter) deploys and projects exactly like the SDK's native fold.
//!
//! Gated on `REFRACT_CARGO_COMPONENT_WASM=<path of the .wasm>` (`.ci/run` builds
//! `stream-counter` with cargo-component and sets it); without it the test only prints
//! a note. Any of the samples works: the native fold is picked by the deployed name and version.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use refract_guest::Projection;
use serde_json::Value;

use crate::common::Daemon;
use crate::common::helpdesk::{sdk_event, workload};

const VAR: &str = "REFRACT_CARGO_COMPONENT_WASM";

/// Every document of the sample deployed as `name` `version` over `events`, folded
/// natively.
fn native_fold(
    name: &str,
    version: u32,
    events: &[refract_guest::Event],
) -> BTreeMap<String, Value> {
    fn fold<P: Projection>(
        name: &str,
        version: u32,
        events: &[refract_guest::Event],
    ) -> Option<BTreeMap<String, Value>> {
        ((P::NAME, P::VERSION) == (name, version))
            .then(|| refract_guest::testing::project::<P>(events).expect("native fold"))
    }
    fold::<stream_counter::StreamCounter>(name, version, events)
        .or_else(|| fold::<incident_details::IncidentDetailsProjection>(name, version, events))
        .or_else(|| fold::<incident_details_v2::IncidentDetailsProjection>(name, version, events))
        .unwrap_or_else(|| panic!("{VAR} names `{name}` v{version}, not one of the samples"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_component_build_projects_like_the_native_fold() {
    let Some(wasm) = std::env::var_os(VAR) else {
        // Straight to stderr: the harness captures `eprintln!` of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "note: {VAR} is unset, skipping the cargo-component test \
             (build a sample with `cargo component build --release -p stream-counter` \
             and set it to target/wasm32-wasip1/release/stream_counter.wasm)"
        );
        return;
    };
    let wasm = wasm.into_string().expect("a UTF-8 path");
    let bytes = std::fs::read(&wasm).unwrap_or_else(|e| panic!("{VAR}={wasm}: {e}"));
    assert_eq!(
        bytes.get(..8),
        Some(&b"\0asm\x0d\0\x01\0"[..]),
        "{wasm} is not a component"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), None);
    let deployed = daemon.deploy(&wasm).await;
    let name = deployed["name"].as_str().expect("name").to_owned();
    let version = deployed["version"].as_u64().expect("version") as u32;
    native_fold(&name, version, &[]); // panics here, before the appends, if not a sample

    // Rounds interleave the streams, so each page holds events of many documents.
    let streams = workload(11, 200);
    let longest = streams.iter().map(|(_, e)| e.len()).max().unwrap_or(0);
    let mut native = Vec::new();
    for round in 0..longest {
        for (id, events) in streams.iter().filter(|(_, e)| e.len() > round) {
            let (ty, data) = &events[round];
            let (status, body) = daemon
                .append(id, Some(round as u64), std::slice::from_ref(&events[round]))
                .await;
            assert_eq!(status, 200, "{id} round {round}: {body}");
            let seq = body["first_sequence"].as_i64().expect("sequence");
            native.push(sdk_event(seq, id, round as u64 + 1, ty, data));
        }
    }
    let head = native.last().map(|e| e.sequence as i64).expect("events");

    let status = daemon
        .wait_caught_up(&name, version, head, Duration::from_secs(120))
        .await;
    assert!(status["error"].is_null(), "{status}");
    assert_eq!(status["events_applied"], native.len() as u64, "{status}");

    let expected = native_fold(&name, version, &native);
    assert_eq!(expected.len(), streams.len());
    for (id, want) in &expected {
        let (code, got) = daemon.get(&format!("/projections/{name}/docs/{id}")).await;
        assert_eq!(code, 200, "{id}: {got}");
        assert_eq!(&got, want, "document {id}");
    }
    // The write-model read calls the guest within the request: same documents.
    for (id, _) in streams.iter().step_by(50) {
        let (code, got) = daemon.get(&format!("/streams/{id}/aggregate/{name}")).await;
        assert_eq!(code, 200, "{id}: {got}");
        assert_eq!(got["document"], expected[id], "aggregate {id}");
    }
}
