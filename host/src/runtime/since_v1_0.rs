//! WIT `refract:projection@1.0.0`: its bindings, its host imports, and its answer to
//! `describe` converted into the latest types (from there into the runtime's). The page calls
//! are shared with later versions (`calls.rs`).

use super::types::DOCUMENTS_OPTION;

super::bindings::bind_wit!(
    projector "1.0.0" at "../wit/projection", types of crate::runtime::since_v1_2
);

super::host::impl_host!(bindings::refract::projection::host);

/// The settings 1.0.0 could only say with options, from its descriptor: it has no
/// typed `documents` (per-stream documents were the option `("documents",
/// "per-stream")`, kept among the options as given) and no maximum page size.
fn settings(d: &types::Descriptor) -> types::Settings {
    let per_stream = d
        .options
        .iter()
        .any(|(k, v)| (k.as_str(), v.as_str()) == DOCUMENTS_OPTION);
    types::Settings {
        documents: if per_stream {
            types::DocumentMode::PerStream
        } else {
            types::DocumentMode::Custom
        },
        max_page_size: None,
    }
}
