//! `hostile-collections`: a WIT 1.2.0 projection written against the raw WIT (the
//! SDK refuses what it returns) that declares the collection `word` and, by the type
//! of each event, names documents the host must refuse:
//!
//! - `Undeclared`: the document `secret/<stream>`, a collection it never declared;
//! - `SpelledKey`: a default-collection id spelling the host's key of
//!   `word/<stream>` (`\x1fword\x1f<stream>`);
//! - `BadName`: a collection named `word\x1fx`;
//! - anything else (`Fine`): `word/<stream>`, a count of its events.

#[cfg(target_arch = "wasm32")]
mod export {
    use refract_guest::bindings::v1_2::exports::refract::projection::projection::Guest;
    use refract_guest::bindings::v1_2::refract::projection::types::Event;
    use refract_guest::bindings::v1_2::refract::projection::types::{
        ComponentKind, Descriptor, DocChange, DocKey, DocumentMode, GuestError, KeyedDocEvents,
        KeyedSlice, Settings,
    };

    struct Hostile;

    impl Guest for Hostile {
        fn describe() -> Descriptor {
            Descriptor {
                name: "hostile-collections".into(),
                version: 1,
                kind: ComponentKind::Projection,
                event_types: ["Undeclared", "SpelledKey", "BadName", "Fine"]
                    .map(String::from)
                    .to_vec(),
                options: Vec::new(),
            }
        }

        fn describe_settings() -> Settings {
            Settings {
                documents: DocumentMode::Custom,
                max_page_size: None,
            }
        }

        fn describe_collections() -> Vec<String> {
            vec!["word".into()]
        }

        fn slice(page: Vec<Event>) -> Result<Vec<KeyedSlice>, GuestError> {
            Ok(page
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let stream = e.stream_id.clone();
                    let (collection, id) = match e.event_type.as_str() {
                        "Undeclared" => (Some("secret".to_owned()), stream),
                        "SpelledKey" => (None, format!("\u{1f}word\u{1f}{stream}")),
                        "BadName" => (Some("word\u{1f}x".to_owned()), stream),
                        _ => (Some("word".to_owned()), stream),
                    };
                    KeyedSlice {
                        doc: DocKey { collection, id },
                        events: vec![i as u32],
                    }
                })
                .collect())
        }

        fn apply(docs: Vec<KeyedDocEvents>) -> Result<Vec<DocChange>, GuestError> {
            Ok(docs
                .into_iter()
                .map(|d| {
                    let before: u64 = d.state.and_then(|s| s.parse().ok()).unwrap_or(0);
                    DocChange::Put((before + d.events.len() as u64).to_string())
                })
                .collect())
        }
    }

    refract_guest::bindings::v1_2::export!(Hostile with_types_in refract_guest::bindings::v1_2);
}
