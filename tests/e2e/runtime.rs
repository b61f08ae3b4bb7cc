//! The runtime on its own, through the library: loading, the compiled-artifact
//! cache, page calls equal to the SDK's native fold, and typed guest errors.

use std::collections::BTreeMap;

use incident_details::IncidentDetailsProjection;
use refract::runtime::{DocChange, DocInput, Event, Fault, Guest, Limits, Runtime, RuntimeError};
use serde_json::{Value, json};

use crate::common::helpdesk::workload;

fn wasm() -> Vec<u8> {
    std::fs::read(refract_test_artifacts::INCIDENT_DETAILS_V1).expect("component built")
}

pub fn recorded(seq: i64, stream: &str, version: u64, ty: &str, data: &Value) -> Event {
    Event {
        sequence: seq,
        stream_id: stream.into(),
        stream_version: version,
        event_type: ty.into(),
        data: data.to_string(),
        metadata: "{}".into(),
        tenant: None,
        timestamp: 0,
    }
}

/// Runs one page through slice and apply with no prior documents (also used by
/// `wit_versions`).
pub fn project_page(
    guest: &mut Guest,
    page: &[Event],
) -> Result<BTreeMap<String, Value>, RuntimeError> {
    let slices = guest.slice(page)?;
    let inputs: Vec<DocInput> = slices
        .iter()
        .map(|s| DocInput {
            id: s.doc_id.clone(),
            state: None,
            events: s.events.clone(),
        })
        .collect();
    let changes = guest.apply(page, inputs)?;
    let mut docs = BTreeMap::new();
    for (slice, change) in slices.into_iter().zip(changes) {
        if let DocChange::Put(body) = change {
            docs.insert(
                slice.doc_id,
                serde_json::from_str(&body).expect("valid JSON"),
            );
        }
    }
    Ok(docs)
}

#[test]
fn loads_describes_and_reuses_the_compiled_artifact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let first = Runtime::new(Some(cache.clone()), Limits::default())
        .and_then(|rt| rt.load(&wasm()))
        .expect("loads");
    assert!(!first.from_cache);
    let d = &first.descriptor;
    assert_eq!((d.name.as_str(), d.version), ("incident-details", 1));
    assert!(
        d.event_types.iter().any(|t| t == "IncidentClosed"),
        "{:?}",
        d.event_types
    );
    // A new engine (a restart) finds the artifact on disk.
    let again = Runtime::new(Some(cache), Limits::default())
        .and_then(|rt| rt.load(&wasm()))
        .expect("loads from cache");
    assert!(again.from_cache);
    assert_eq!(again.sha256, first.sha256);
    assert_eq!(again.descriptor, first.descriptor);
}

#[test]
fn a_page_through_the_component_equals_the_native_fold() {
    let rt = Runtime::new(None, Limits::default()).expect("runtime");
    let loaded = rt.load(&wasm()).expect("loads");
    let mut guest = Guest::new(&loaded, "incident-details@v1".into());
    let mut page = Vec::new();
    let mut native = Vec::new();
    for (id, events) in workload(5, 120) {
        for (i, (ty, data)) in events.iter().enumerate() {
            let seq = page.len() as i64 + 1;
            page.push(recorded(seq, &id, i as u64 + 1, ty, data));
            native.push(crate::common::helpdesk::sdk_event(
                seq,
                &id,
                i as u64 + 1,
                ty,
                data,
            ));
        }
    }
    // An event type the projection does not handle is skipped, not an error.
    page.push(recorded(
        page.len() as i64 + 1,
        "incident-00001",
        99,
        "IncidentDuplicated",
        &json!({}),
    ));
    // The host slices per-stream guests itself: the same answer as the guest's.
    assert!(loaded.descriptor.per_stream());
    let by_guest = guest.slice_in_guest(&page).expect("guest slices");
    assert_eq!(
        by_guest,
        refract::runtime::slice_by_stream(&page[..page.len() - 1])
    );
    let got = project_page(&mut guest, &page).expect("projects");
    let want = refract_guest::testing::project::<IncidentDetailsProjection>(&native).expect("fold");
    assert_eq!(got.len(), 120);
    assert_eq!(got, want);
}

#[test]
fn a_bad_event_is_a_typed_guest_error_naming_component_and_event() {
    let rt = Runtime::new(None, Limits::default()).expect("runtime");
    let loaded = rt.load(&wasm()).expect("loads");
    let mut guest = Guest::new(&loaded, "incident-details@v1".into());
    let good = json!({"customer_id": "c", "contact": {}, "description": "d", "logged_by": "a"});
    let page = [
        recorded(6, "a", 1, "IncidentLogged", &good),
        recorded(7, "b", 1, "IncidentLogged", &json!({"contact": {}})),
    ];
    let err = project_page(&mut guest, &page).expect_err("must fail");
    assert_eq!(err.fault(), Fault::Guest);
    match &err {
        RuntimeError::Guest {
            component,
            event_sequence,
            message,
        } => {
            assert_eq!(component, "incident-details@v1");
            assert_eq!(*event_sequence, Some(7));
            assert!(message.contains("customer_id"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("incident-details@v1 failed at event 7"),
        "{err}"
    );
    // The guest goes on serving good pages.
    let docs = project_page(&mut guest, &page[..1]).expect("good page");
    assert_eq!(docs["a"]["status"], "Pending");
}
