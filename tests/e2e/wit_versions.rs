//! WIT versions side by side: guests of `refract:projection@1.0.0` (one compiled
//! before 1.1.0 existed, one exported by today's SDK in the 1.0.0 form) and of 1.1.0
//! (one declaring custom documents and a small `max-page-size`) in one runtime and
//! in one daemon; and a component exporting neither version is refused by name.

use std::collections::BTreeMap;
use std::time::Duration;

use refract::runtime::{
    DocumentMode, Guest, Limits, LoadedComponent, Runtime, RuntimeError, WitVersion,
};
use serde_json::{Value, json};

use crate::common::Daemon;
use crate::runtime::{project_page, recorded};

/// `stream-counter` as built at commit 6d88782, before WIT 1.1.0 existed (`cargo build
/// --target wasm32-wasip2 --profile guest -p stream-counter`): it imports `host` and
/// `types` @1.0.0 and exports `projection@1.0.0`.
const STREAM_COUNTER_1_0: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/stream-counter-wit-1.0.0.wasm"
);

/// `capped-counter`'s `MAX_PAGE_SIZE`.
const CAPPED: usize = 7;

const TICKET_TYPES: [&str; 4] = [
    "TicketOpened",
    "TicketCommented",
    "TicketCommented",
    "TicketClosed",
];

fn load(rt: &Runtime, path: &str) -> LoadedComponent {
    let wasm = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    rt.load(&wasm).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn each_version_loads_and_its_descriptor_converts_into_the_latest() {
    let rt = Runtime::new(None, Limits::default()).expect("runtime");
    let per_stream_option = [("documents".to_owned(), "per-stream".to_owned())];
    // 1.0.0: per-stream documents come from the option (kept), no maximum page size.
    for (path, name) in [
        (STREAM_COUNTER_1_0, "stream-counter"),
        (refract_test_artifacts::LEGACY_COUNTER, "legacy-counter"),
    ] {
        let d = load(&rt, path).descriptor;
        assert_eq!((d.name.as_str(), d.wit_version), (name, WitVersion::V1_0));
        assert_eq!(
            (d.documents, d.max_page_size),
            (DocumentMode::PerStream, None)
        );
        assert_eq!(d.options, per_stream_option);
        assert_eq!(d.page_size(5000), 5000);
    }
    // 1.1.0: the typed settings, and no option.
    let d = load(&rt, refract_test_artifacts::CAPPED_COUNTER).descriptor;
    assert_eq!(
        (d.name.as_str(), d.wit_version),
        ("capped-counter", WitVersion::V1_1)
    );
    assert_eq!(d.documents, DocumentMode::Custom);
    assert_eq!(d.max_page_size, Some(CAPPED as u32));
    assert!(d.options.is_empty(), "{:?}", d.options);
    assert_eq!((d.page_size(5000), d.page_size(3)), (CAPPED, 3));
    // The samples export the latest version; 1.2.0 adds the collections.
    let d = load(&rt, refract_test_artifacts::STREAM_COUNTER).descriptor;
    assert_eq!(
        (d.wit_version, d.documents),
        (WitVersion::V1_2, DocumentMode::PerStream)
    );
    assert!(d.options.is_empty(), "{:?}", d.options);
    assert!(d.collections.is_empty(), "{:?}", d.collections);
    let d = load(&rt, refract_test_artifacts::WORD_COUNT).descriptor;
    assert_eq!(d.collections, ["word", "dictionary"]);
}

#[test]
fn guests_of_both_versions_project_one_page_side_by_side() {
    let rt = Runtime::new(None, Limits::default()).expect("runtime");
    let page: Vec<_> = (0..20)
        .map(|n| {
            let (stream, ty) = (format!("t-{}", n % 3), TICKET_TYPES[n % 4]);
            recorded(n as i64 + 1, &stream, n as u64 / 3 + 1, ty, &json!({}))
        })
        .collect();

    let legacy = load(&rt, refract_test_artifacts::LEGACY_COUNTER);
    let mut legacy = Guest::new(&legacy, "legacy-counter@v1".into());
    let docs = project_page(&mut legacy, &page).expect("1.0.0 guest projects");
    assert_eq!(docs.len(), 3);
    assert_eq!(
        docs["t-0"],
        json!({"stream": "t-0", "events": 7, "last_version": 7})
    );

    // capped-counter takes 7 events a call: the SDK refuses a larger page (so a
    // daemon paging it wrong would pause it), and projects one of 7.
    let capped = load(&rt, refract_test_artifacts::CAPPED_COUNTER);
    let mut capped = Guest::new(&capped, "capped-counter@v1".into());
    let err = capped.slice(&page).expect_err("a page of 20 is refused");
    assert!(err.to_string().contains("MAX_PAGE_SIZE 7"), "{err}");
    let docs = project_page(&mut capped, &page[..CAPPED]).expect("1.1.0 guest projects");
    assert_eq!(docs["TicketOpened"]["count"], 2);
    assert_eq!(
        docs["TicketClosed"],
        json!({"event_type": "TicketClosed", "count": 1, "last_sequence": 4})
    );

    // One document with all 20 events, as a write-model read asks: the host hands
    // them over in parts, the state carried from part to part.
    let all = refract::runtime::DocInput {
        id: "TicketCommented".into(),
        state: None,
        events: (0..20).collect(),
    };
    let change = capped.apply(&page, vec![all]).expect("applied in parts");
    let refract::runtime::DocChange::Put(body) = &change[0] else {
        panic!("{change:?}");
    };
    let doc: Value = serde_json::from_str(body).expect("JSON");
    assert_eq!(
        (&doc["count"], &doc["last_sequence"]),
        (&json!(20), &json!(20))
    );
}

#[test]
fn guests_of_both_versions_report_a_panic_with_its_event() {
    let rt = Runtime::new(None, Limits::default()).expect("runtime");
    let page = [
        recorded(1, "t-1", 1, "TicketOpened", &json!({})),
        recorded(2, "panic", 1, "TicketClosed", &json!({})),
    ];
    for (path, name) in [
        (refract_test_artifacts::LEGACY_COUNTER, "legacy-counter@v1"),
        (refract_test_artifacts::CAPPED_COUNTER, "capped-counter@v1"),
    ] {
        let mut guest = Guest::new(&load(&rt, path), name.into());
        match project_page(&mut guest, &page) {
            Err(RuntimeError::Guest {
                component,
                event_sequence,
                message,
            }) => {
                assert_eq!((component.as_str(), event_sequence), (name, Some(2)));
                assert!(
                    message.contains("told to panic by stream panic"),
                    "{message}"
                );
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn a_component_exporting_neither_version_is_refused_naming_both() {
    let rt = Runtime::new(None, Limits::default()).expect("runtime");
    // A real component, exporting a projection interface of a version refract lacks.
    let wasm = wat::parse_str(
        r#"(component
            (core module $m (func (export "describe") (result i32) i32.const 0))
            (core instance $i (instantiate $m))
            (func $describe (result u32) (canon lift (core func $i "describe")))
            (instance $api (export "describe" (func $describe)))
            (export "refract:projection/projection@2.0.0" (instance $api)))"#,
    )
    .expect("valid component text");
    let Err(err) = rt.load(&wasm) else {
        panic!("a component exporting projection@2.0.0 was loaded");
    };
    let err = err.to_string();
    for needle in [
        "refract:projection/projection@1.2.0",
        "refract:projection/projection@1.1.0",
        "refract:projection/projection@1.0.0",
        "WIT versions 1.2.0, 1.1.0, 1.0.0",
        "it exports: refract:projection/projection@2.0.0",
    ] {
        assert!(err.contains(needle), "{err:?} should name {needle:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_of_both_versions_run_at_once_in_one_daemon() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), Some("page_size = 50\n"));
    let mut tickets = Tickets::default();

    // A backlog before the deploys, so each version rebuilds in pages of its size.
    for n in 0..40 {
        tickets.append(&daemon, n).await;
    }
    for n in 0..6 {
        let ty = ["IncidentLogged", "IncidentClosed"][n % 2];
        let body = json!({"type": ty, "data": {}});
        let events = json!({"expected_version": null, "events": [body]});
        let (code, resp) = daemon
            .post_json(&format!("/streams/i-{}/events", n % 3), &events)
            .await;
        assert_eq!(code, 200, "{resp}");
    }
    for path in [
        STREAM_COUNTER_1_0,
        refract_test_artifacts::LEGACY_COUNTER,
        refract_test_artifacts::CAPPED_COUNTER,
    ] {
        daemon.deploy(path).await;
    }
    let names = ["stream-counter", "legacy-counter", "capped-counter"];
    for name in names {
        daemon
            .wait_caught_up(name, 1, tickets.head, Duration::from_secs(60))
            .await;
    }
    // Then live events, one at a time.
    for n in 40..60 {
        tickets.append(&daemon, n).await;
    }

    let mut shown = BTreeMap::new();
    for name in names {
        let p = daemon
            .wait_caught_up(name, 1, tickets.head, Duration::from_secs(60))
            .await;
        // A page larger than capped-counter takes would have paused it (the SDK
        // refuses one), so running to the end shows the host honoured its maximum.
        assert_eq!(
            (&p["status"], &p["error"]),
            (&json!("running"), &Value::Null),
            "{p}"
        );
        shown.insert(name, (p["wit"].clone(), p["page_size"].clone()));
    }
    assert_eq!(shown["stream-counter"], (json!("1.0.0"), json!(50)));
    assert_eq!(shown["legacy-counter"], (json!("1.0.0"), json!(50)));
    assert_eq!(shown["capped-counter"], (json!("1.1.0"), json!(CAPPED)));

    for (stream, count) in &tickets.per_stream {
        let (code, doc) = daemon
            .get(&format!("/projections/legacy-counter/docs/{stream}"))
            .await;
        let want = json!({"stream": stream, "events": count, "last_version": count});
        assert_eq!((code, doc), (200, want));
    }
    for (ty, (count, last)) in &tickets.per_type {
        let (code, doc) = daemon
            .get(&format!("/projections/capped-counter/docs/{ty}"))
            .await;
        let want = json!({"event_type": ty, "count": count, "last_sequence": last});
        assert_eq!((code, doc), (200, want));
    }
    let (code, doc) = daemon.get("/projections/stream-counter/docs/i-0").await;
    assert_eq!((code, &doc["total"]), (200, &json!(2)), "{doc}");

    // Each version's guest logs through the host, tagged with the component.
    let log = daemon.log();
    for (line, component) in [
        ("counting stream t-0", "legacy-counter@v1"),
        ("counting type TicketOpened", "capped-counter@v1"),
    ] {
        let found = log
            .lines()
            .any(|l| l.contains(line) && l.contains(component));
        assert!(found, "no {line:?} from {component} in\n{log}");
    }
}

/// Ticket events appended so far, and what the counters should make of them.
#[derive(Default)]
struct Tickets {
    head: i64,
    per_stream: BTreeMap<String, u64>,
    /// Count and last sequence by type.
    per_type: BTreeMap<&'static str, (u64, i64)>,
}

impl Tickets {
    async fn append(&mut self, daemon: &Daemon, n: usize) {
        let (stream, ty) = (format!("t-{}", n % 5), TICKET_TYPES[n % 4]);
        let (code, resp) = daemon
            .append(&stream, None, &[(ty.to_owned(), json!({}))])
            .await;
        assert_eq!(code, 200, "{resp}");
        let seq = resp["last_sequence"].as_i64().expect("sequence");
        self.head = seq;
        *self.per_stream.entry(stream).or_default() += 1;
        let (count, last) = self.per_type.entry(ty).or_default();
        (*count, *last) = (*count + 1, seq);
    }
}

/// The SDK's 1.0.0 form is for authors whose hosts predate 1.1.0: its component
/// runs on a host that links only the 1.0.0 world, as refract did before.
mod older_host {
    use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
    use wasmtime::{Config, Engine, Store};
    use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

    mod wit_1_0 {
        wasmtime::component::bindgen!({ world: "projector", path: "../wit/projection" });
    }

    use wit_1_0::refract::projection::{host, types};

    struct OldHost {
        wasi: WasiCtx,
        table: ResourceTable,
    }

    impl WasiView for OldHost {
        fn ctx(&mut self) -> WasiCtxView<'_> {
            WasiCtxView {
                ctx: &mut self.wasi,
                table: &mut self.table,
            }
        }
    }

    impl types::Host for OldHost {}

    impl host::Host for OldHost {
        fn log(&mut self, _level: host::Level, _message: String) {}

        fn panicked(&mut self, _error: types::GuestError) {}
    }

    #[test]
    fn an_sdk_1_0_export_runs_on_a_host_that_knows_only_1_0() {
        let engine = Engine::new(Config::new().wasm_component_model(true)).expect("engine");
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("WASI");
        wit_1_0::Projector::add_to_linker::<OldHost, HasSelf<OldHost>>(&mut linker, |s| s)
            .expect("1.0.0 host");
        let component = Component::from_file(&engine, refract_test_artifacts::LEGACY_COUNTER)
            .expect("component");
        let state = OldHost {
            wasi: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(&engine, state);
        let projector = wit_1_0::Projector::instantiate(&mut store, &component, &linker)
            .expect("links against 1.0.0 alone");
        let d = projector
            .refract_projection_projection()
            .call_describe(&mut store)
            .expect("describe");
        assert_eq!((d.name.as_str(), d.version), ("legacy-counter", 1));
        assert_eq!(d.options, [("documents".into(), "per-stream".into())]);
    }
}
