use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::testing::{PAGE_SIZE, given};
use crate::{DocChange, DocEvents, Documents, Envelope, Event, Projection, apply, describe, slice};

#[derive(Debug, Deserialize, PartialEq)]
enum Ev {
    Opened {
        owner: String,
    },
    Added(u32),
    Pair(String, u32),
    #[serde(rename = "closed")]
    Closed,
    Noted {},
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Doc {
    id: String,
    owner: String,
    total: u32,
    seen_at: Vec<Option<u64>>,
}

/// One document per stream; `closed` deletes it.
struct ByStream;

impl Projection for ByStream {
    type Event = Ev;
    type Doc = Doc;
    const NAME: &'static str = "by-stream";
    const VERSION: u32 = 3;

    fn create(id: &str, event: &Envelope<Ev>) -> Option<Doc> {
        match &event.event {
            Ev::Opened { owner } => Some(Doc {
                id: id.to_owned(),
                owner: owner.clone(),
                total: 0,
                seen_at: vec![crate::engine::current_sequence()],
            }),
            _ => None,
        }
    }

    fn apply(doc: &mut Doc, event: &Envelope<Ev>) {
        doc.seen_at.push(crate::engine::current_sequence());
        match &event.event {
            Ev::Added(n) | Ev::Pair(_, n) => doc.total += n,
            Ev::Opened { .. } | Ev::Closed | Ev::Noted {} => {}
        }
    }

    fn should_delete(_doc: &Doc, event: &Envelope<Ev>) -> bool {
        event.event == Ev::Closed
    }
}

/// Every event touches its stream's document and an `all` document.
struct Fanout;

impl Projection for Fanout {
    type Event = Ev;
    type Doc = u32;
    const NAME: &'static str = "fanout";
    const VERSION: u32 = 1;
    const DOCUMENTS: Documents = Documents::Custom;

    fn doc_ids(event: &Envelope<Ev>) -> Vec<String> {
        vec![
            event.stream_id.clone(),
            "all".into(),
            event.stream_id.clone(),
        ]
    }

    fn create(_id: &str, _event: &Envelope<Ev>) -> Option<u32> {
        Some(1)
    }

    fn apply(doc: &mut u32, _event: &Envelope<Ev>) {
        *doc += 1;
    }
}

fn event(sequence: u64, stream_id: &str, event_type: &str, data: Value) -> Event {
    Event {
        sequence,
        stream_id: stream_id.into(),
        stream_version: 1,
        event_type: event_type.into(),
        data: data.to_string(),
        metadata: r#"{"user":"ann"}"#.into(),
        tenant: Some("t1".into()),
        timestamp: 7,
    }
}

fn decode(event_type: &str, data: &str) -> Result<Ev, serde_json::Error> {
    crate::decode::decode(event_type, data)
}

#[test]
fn decodes_every_kind_of_variant() {
    let opened = decode("Opened", r#"{"owner":"bo","extra":1}"#).unwrap();
    assert_eq!(opened, Ev::Opened { owner: "bo".into() });
    assert_eq!(decode("Added", "5").unwrap(), Ev::Added(5));
    assert_eq!(
        decode("Pair", r#"["a", 2]"#).unwrap(),
        Ev::Pair("a".into(), 2)
    );
    assert_eq!(decode("closed", r#"{"why":"done"}"#).unwrap(), Ev::Closed);
    assert_eq!(decode("Noted", r#"{"text":"x"}"#).unwrap(), Ev::Noted {});
}

#[test]
fn rejects_bad_data() {
    assert!(decode("Added", "5 6").is_err(), "trailing data");
    assert!(
        decode("closed", "{").is_err(),
        "unit variant data is still JSON"
    );
    let e = decode("Opened", "{}").unwrap_err().to_string();
    assert!(e.contains("missing field `owner`"), "{e}");
    let e = decode("Other", "{}").unwrap_err().to_string();
    assert!(e.contains("unknown variant `Other`"), "{e}");
}

#[test]
fn describe_lists_the_enum_variants() {
    let d = describe::<ByStream>();
    assert_eq!((d.name.as_str(), d.version), ("by-stream", 3));
    assert_eq!(d.kind, crate::ComponentKind::Projection);
    assert_eq!(
        d.event_types,
        ["Opened", "Added", "Pair", "closed", "Noted"]
    );
    assert_eq!(d.documents, Documents::PerStream);
    assert_eq!(d.max_page_size, None);
    assert!(d.options.is_empty(), "{:?}", d.options);
}

#[test]
fn a_type_that_is_not_an_enum_handles_nothing() {
    #[derive(Debug, Deserialize)]
    struct NotAnEnum {}
    assert!(crate::decode::variants::<NotAnEnum>().is_empty());
    let e = crate::decode::decode::<NotAnEnum>("X", "{}").unwrap_err();
    assert!(e.to_string().contains("externally tagged"), "{e}");
}

#[test]
fn slice_groups_by_stream_in_order_of_first_appearance() {
    let page = [
        event(10, "b", "Opened", json!({"owner": "x"})),
        event(11, "a", "Opened", json!({"owner": "y"})),
        event(12, "b", "Unknown", json!({})),
        event(13, "b", "Added", json!(1)),
        // Slicing by stream does not decode events after the first.
        event(14, "c", "Added", json!("not a number")),
    ];
    let slices = slice::<ByStream>(&page).unwrap();
    let got: Vec<(&str, &[u32])> = slices
        .iter()
        .map(|s| (s.doc_id.as_str(), s.events.as_slice()))
        .collect();
    assert_eq!(got, [("b", &[0, 3][..]), ("a", &[1]), ("c", &[4])]);
    assert_eq!(slice::<ByStream>(&[]).unwrap(), []);
}

#[test]
fn slice_uses_custom_doc_ids_and_lists_an_event_once_per_doc() {
    let page = [
        event(1, "b", "Added", json!(1)),
        event(2, "zzz", "Ignored", json!(null)),
        event(3, "a", "Added", json!(2)),
    ];
    let slices = slice::<Fanout>(&page).unwrap();
    let got: Vec<(&str, &[u32])> = slices
        .iter()
        .map(|s| (s.doc_id.as_str(), s.events.as_slice()))
        .collect();
    assert_eq!(got, [("b", &[0][..]), ("all", &[0, 2]), ("a", &[2])]);
}

#[test]
fn slice_reports_the_event_it_cannot_decode() {
    let page = [
        event(1, "b", "Added", json!(1)),
        event(42, "a", "Opened", json!({"name": "x"})),
    ];
    let e = slice::<Fanout>(&page).unwrap_err();
    assert_eq!(e.event_sequence, Some(42));
    assert!(
        e.message
            .starts_with("cannot decode Opened at sequence 42: missing field `owner`"),
        "{e}"
    );
}

#[test]
fn apply_puts_deletes_and_keeps() {
    let existing = r#"{"id":"e","owner":"o","total":1,"seen_at":[]}"#;
    let docs = vec![
        // Created.
        DocEvents {
            collection: None,
            doc_id: "new".into(),
            state: None,
            events: vec![
                event(1, "new", "Opened", json!({"owner": "ann"})),
                event(2, "new", "Unknown", json!({})),
                event(3, "new", "Added", json!(4)),
            ],
        },
        // An event that creates nothing, for a missing document: ignored.
        DocEvents {
            collection: None,
            doc_id: "ghost".into(),
            state: None,
            events: vec![event(4, "ghost", "Added", json!(1))],
        },
        // Only unknown events: left as it was.
        DocEvents {
            collection: None,
            doc_id: "e".into(),
            state: Some(existing.into()),
            events: vec![event(5, "e", "Unknown", json!(1))],
        },
        // Deleted.
        DocEvents {
            collection: None,
            doc_id: "e".into(),
            state: Some(existing.into()),
            events: vec![
                event(6, "e", "Added", json!(1)),
                event(7, "e", "closed", json!({})),
            ],
        },
        // Created and deleted within the page: nothing to store.
        DocEvents {
            collection: None,
            doc_id: "brief".into(),
            state: None,
            events: vec![
                event(8, "brief", "Opened", json!({"owner": "x"})),
                event(9, "brief", "closed", json!({})),
            ],
        },
        // Deleted, then created again.
        DocEvents {
            collection: None,
            doc_id: "e".into(),
            state: Some(existing.into()),
            events: vec![
                event(10, "e", "closed", json!({})),
                event(11, "e", "Opened", json!({"owner": "again"})),
            ],
        },
    ];
    // Put's JSON parsed, to compare it regardless of key order.
    let changes: Vec<Option<Value>> = apply::<ByStream>(docs)
        .unwrap()
        .into_iter()
        .map(|c| match c {
            DocChange::Put(json) => Some(serde_json::from_str(&json).unwrap()),
            DocChange::Delete => Some(json!("deleted")),
            DocChange::Keep => None,
        })
        .collect();
    let expected = [
        Some(json!({"id": "new", "owner": "ann", "total": 4, "seen_at": [1, 3]})),
        None,
        None,
        Some(json!("deleted")),
        None,
        Some(json!({"id": "e", "owner": "again", "total": 0, "seen_at": [11]})),
    ];
    assert_eq!(changes, expected);
    assert_eq!(crate::engine::current_sequence(), None);
}

#[test]
fn apply_reports_bad_events_and_bad_state() {
    let bad_event = DocEvents {
        collection: None,
        doc_id: "d".into(),
        state: None,
        events: vec![event(42, "d", "Opened", json!({"owner": 5}))],
    };
    let e = apply::<ByStream>(vec![bad_event]).unwrap_err();
    assert_eq!(e.event_sequence, Some(42));
    assert!(
        e.message
            .starts_with("cannot decode Opened at sequence 42: invalid type"),
        "{e}"
    );

    let bad_state = DocEvents {
        collection: None,
        doc_id: "d".into(),
        state: Some("[1]".into()),
        events: vec![],
    };
    let e = apply::<ByStream>(vec![bad_state]).unwrap_err();
    assert_eq!(e.event_sequence, None);
    assert!(e.message.starts_with("cannot decode document \"d\""), "{e}");
}

#[test]
fn envelopes_carry_the_event_metadata() {
    struct Meta;
    impl Projection for Meta {
        type Event = Ev;
        type Doc = Value;
        const NAME: &'static str = "meta";
        const VERSION: u32 = 1;
        fn create(id: &str, e: &Envelope<Ev>) -> Option<Value> {
            let user: Value = e.metadata_as().ok()?;
            Some(json!([
                id,
                e.sequence,
                e.stream_id,
                e.stream_version,
                e.event_type,
                e.timestamp,
                e.tenant,
                user
            ]))
        }
        fn apply(_doc: &mut Value, _e: &Envelope<Ev>) {}
    }
    let docs = vec![DocEvents {
        collection: None,
        doc_id: "doc".into(),
        state: None,
        events: vec![event(9, "s", "Added", json!(1))],
    }];
    let expected = json!(["doc", 9, "s", 1, "Added", 7, "t1", {"user": "ann"}]);
    assert_eq!(
        apply::<Meta>(docs).unwrap(),
        [DocChange::Put(expected.to_string())]
    );
}

#[test]
fn the_harness_projects_page_by_page() {
    let mut events = given().event("s-1", "Opened", json!({"owner": "ann"}));
    for i in 0..(2 * PAGE_SIZE as u32) {
        events = events
            .event("s-1", "Added", json!(1))
            .event("s-2", "Noise", json!(i));
    }
    events = events.event("s-3", "Opened", json!({"owner": "bo"}));
    events = events.event("s-3", "closed", json!({}));
    let docs = events.docs::<ByStream>();
    assert_eq!(docs.keys().collect::<Vec<_>>(), ["s-1"]);
    assert_eq!(docs["s-1"]["total"], json!(2 * PAGE_SIZE));
    assert_eq!(events.events().last().map(|e| e.stream_version), Some(2));

    let counts = events.docs::<Fanout>();
    assert_eq!(counts["all"], json!(2 * PAGE_SIZE + 3));
    assert_eq!(counts["s-1"], json!(2 * PAGE_SIZE + 1));
}

#[test]
fn the_harness_reports_guest_errors() {
    let events = given()
        .event("s-1", "Opened", json!({"owner": "ann"}))
        .event_with("s-1", "Added", json!(-1), |e| e.tenant = Some("t".into()));
    assert_eq!(events.events()[1].tenant.as_deref(), Some("t"));
    let e = events.project::<ByStream>().unwrap_err();
    assert_eq!(e.event_sequence, Some(2));
    assert!(
        e.to_string()
            .starts_with("cannot decode Added at sequence 2"),
        "{e}"
    );
}

/// Overrides `doc_ids` but forgets to say so.
struct Forgetful;

impl Projection for Forgetful {
    type Event = Ev;
    type Doc = u32;
    const NAME: &'static str = "forgetful";
    const VERSION: u32 = 1;

    fn doc_ids(_event: &Envelope<Ev>) -> Vec<String> {
        vec!["all".into()]
    }

    fn create(_id: &str, _event: &Envelope<Ev>) -> Option<u32> {
        Some(1)
    }

    fn apply(doc: &mut u32, _event: &Envelope<Ev>) {
        *doc += 1;
    }
}

#[test]
fn describe_tells_the_host_how_documents_map_to_streams() {
    // 1.1.0 says it with a typed field, 1.0.0 with an option.
    assert_eq!(describe::<Forgetful>().documents, Documents::PerStream);
    assert_eq!(describe::<Fanout>().documents, Documents::Custom);
    let per_stream = ("documents".to_owned(), "per-stream".to_owned());
    assert_eq!(describe::<Forgetful>().v1_0_options(), [per_stream]);
    assert!(describe::<Fanout>().v1_0_options().is_empty());
}

#[test]
fn the_harness_reports_doc_ids_overridden_without_custom_documents() {
    let err = given()
        .event("s-1", "Added", json!(1))
        .project::<Forgetful>()
        .expect_err("doc_ids would never be called");
    assert!(err.message.contains("Documents::Custom"), "{}", err.message);
    assert_eq!(err.event_sequence, Some(1));
}
