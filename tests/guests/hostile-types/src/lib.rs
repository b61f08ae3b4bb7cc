//! `hostile-types`: a projection whose `describe` declares 100,000 event types
//! (written against the raw WIT: the SDK takes its types from an enum).

#[cfg(target_arch = "wasm32")]
mod export {
    use refract_guest::bindings::v1_1::exports::refract::projection::projection::Guest;
    use refract_guest::bindings::v1_2::refract::projection::types::{
        ComponentKind, Descriptor, DocChange, DocEvents, DocSlice, DocumentMode, Event, GuestError,
        Settings,
    };

    struct Hostile;

    impl Guest for Hostile {
        fn describe() -> Descriptor {
            Descriptor {
                name: "hostile-types".into(),
                version: 1,
                kind: ComponentKind::Projection,
                event_types: (0..100_000).map(|i| format!("Type{i}")).collect(),
                options: Vec::new(),
            }
        }

        fn describe_settings() -> Settings {
            Settings {
                documents: DocumentMode::PerStream,
                max_page_size: None,
            }
        }

        fn slice(_page: Vec<Event>) -> Result<Vec<DocSlice>, GuestError> {
            Ok(Vec::new())
        }

        fn apply(docs: Vec<DocEvents>) -> Result<Vec<DocChange>, GuestError> {
            Ok(docs.iter().map(|_| DocChange::Keep).collect())
        }
    }

    refract_guest::bindings::v1_1::export!(Hostile with_types_in refract_guest::bindings::v1_1);
}
