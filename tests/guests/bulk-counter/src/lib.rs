//! `bulk-counter`: counts `BulkTick` events per stream, written straight against the
//! WIT bindings (no serde) so that it compiles fast: the pool test deploys thousands
//! of copies. Its name is the fixed-width placeholder [`PLACEHOLDER`], which the test
//! (tests/e2e/hostile_pool.rs) patches in the .wasm bytes to make each copy a
//! distinct component. A copy whose name starts `bulk-s` is a spinner: a `BulkSpin`
//! event makes it loop until its CPU deadline, holding its instance (and its team's
//! slot) all that time.

/// The name in the built component, patched by the test (same length).
pub const PLACEHOLDER: &str = "bulk-XXXXXX";

/// The count after `events` (their types) on a document whose JSON is `state`.
pub fn count(state: Option<&str>, events: &[&str]) -> u64 {
    let digits: String = state
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let mut n = digits.parse::<u64>().unwrap_or(0);
    for t in events {
        match *t {
            "BulkTick" => n += 1,
            // Read at run time: the test patches these bytes.
            "BulkSpin" if std::hint::black_box(PLACEHOLDER).as_bytes().get(5) == Some(&b's') => {
                let mut i = 0u64;
                loop {
                    i = std::hint::black_box(i.wrapping_add(1));
                }
            }
            _ => {}
        }
    }
    n
}

#[cfg(target_arch = "wasm32")]
mod export {
    use refract_guest::__glue::wit;

    struct Bulk;

    impl refract_guest::__glue::v1_1::Guest for Bulk {
        fn describe() -> wit::Descriptor {
            wit::Descriptor {
                name: std::hint::black_box(super::PLACEHOLDER).to_owned(),
                version: 1,
                kind: wit::ComponentKind::Projection,
                event_types: vec!["BulkTick".into(), "BulkSpin".into()],
                options: Vec::new(),
            }
        }

        fn describe_settings() -> wit::Settings {
            wit::Settings {
                documents: wit::DocumentMode::PerStream,
                max_page_size: None,
            }
        }

        fn slice(page: Vec<wit::Event>) -> Result<Vec<wit::DocSlice>, wit::GuestError> {
            let mut out: Vec<wit::DocSlice> = Vec::new();
            for (i, e) in page.iter().enumerate() {
                match out.iter_mut().find(|s| s.doc_id == e.stream_id) {
                    Some(s) => s.events.push(i as u32),
                    None => out.push(wit::DocSlice {
                        doc_id: e.stream_id.clone(),
                        events: vec![i as u32],
                    }),
                }
            }
            Ok(out)
        }

        fn apply(docs: Vec<wit::DocEvents>) -> Result<Vec<wit::DocChange>, wit::GuestError> {
            Ok(docs
                .iter()
                .map(|d| {
                    let types: Vec<&str> = d.events.iter().map(|e| e.event_type.as_str()).collect();
                    let n = super::count(d.state.as_deref(), &types);
                    wit::DocChange::Put(format!("{{\"count\":{n}}}"))
                })
                .collect())
        }
    }

    refract_guest::bindings::v1_1::export!(Bulk with_types_in refract_guest::bindings::v1_1);
}
