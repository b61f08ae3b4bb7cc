//! Lookups natively: a projection must declare them, and a lookup that cannot be
//! answered or decoded fails the event being routed, naming it.

use serde::Deserialize;
use serde_json::json;

use crate::lookup::lookup;
use crate::testing::{given, project_all_in_pages};
use crate::{DocRef, Documents, Envelope, Projection};

#[derive(Deserialize)]
enum Ev {
    Set { key: String, value: u64 },
    Copy { from: String, to: String },
}

/// `Copy` routes to the document its `from` document names in `to`... and reads
/// `from` as a number (so a document of another shape fails to decode).
struct Copier<const LOOKUPS: bool>;

impl<const L: bool> Projection for Copier<L> {
    type Event = Ev;
    type Doc = serde_json::Value;
    const NAME: &'static str = "copier";
    const VERSION: u32 = 1;
    const DOCUMENTS: Documents = Documents::Custom;
    const LOOKUPS: bool = L;

    fn doc_refs(event: &Envelope<Ev>) -> Vec<DocRef> {
        match &event.event {
            Ev::Set { key, .. } => vec![DocRef::new(key.clone())],
            Ev::Copy { from, to } => match lookup::<u64>(&DocRef::new(from.clone())) {
                Some(_) => vec![DocRef::new(to.clone())],
                None => Vec::new(),
            },
        }
    }

    fn create(_id: &str, event: &Envelope<Ev>) -> Option<serde_json::Value> {
        match &event.event {
            Ev::Set { value, .. } => Some(json!(value)),
            Ev::Copy { from, .. } => Some(json!(format!("copied from {from}"))),
        }
    }

    fn apply(doc: &mut serde_json::Value, event: &Envelope<Ev>) {
        if let Some(d) = Self::create("", event) {
            *doc = d;
        }
    }
}

#[test]
fn a_lookup_sees_the_pages_before_and_routes_by_them() {
    let events = given()
        .event("s", "Set", json!({"key": "a", "value": 1}))
        .event("s", "Copy", json!({"from": "a", "to": "b"}))
        .event("s", "Copy", json!({"from": "nothing", "to": "c"}));
    let docs = project_all_in_pages::<Copier<true>>(events.events(), 1).expect("fold");
    assert_eq!(docs.get(&DocRef::new("b")), Some(&json!("copied from a")));
    assert!(
        !docs.contains_key(&DocRef::new("c")),
        "no document: no route"
    );
}

#[test]
fn a_projection_that_does_not_declare_lookups_is_told_so_naming_the_event() {
    let events = given()
        .event("s", "Set", json!({"key": "a", "value": 1}))
        .event("s", "Copy", json!({"from": "a", "to": "b"}));
    let e = project_all_in_pages::<Copier<false>>(events.events(), 1).expect_err("undeclared");
    assert_eq!(e.event_sequence, Some(2), "{e}");
    assert!(
        e.message
            .contains("copier could not route Copy at sequence 2"),
        "{e}"
    );
    assert!(e.message.contains("const LOOKUPS: bool = true;"), "{e}");
}

#[test]
fn a_looked_up_document_that_does_not_decode_fails_the_event() {
    // `b` becomes text ("copied from a"): read as a number, it does not decode.
    let events = given()
        .event("s", "Set", json!({"key": "a", "value": 1}))
        .event("s", "Copy", json!({"from": "a", "to": "b"}))
        .event("s", "Copy", json!({"from": "b", "to": "c"}));
    let e = project_all_in_pages::<Copier<true>>(events.events(), 1).expect_err("decode");
    assert!(
        e.message
            .contains("lookup of document \"b\": it does not decode"),
        "{e}"
    );
    assert_eq!(e.event_sequence, Some(3), "{e}");
}
