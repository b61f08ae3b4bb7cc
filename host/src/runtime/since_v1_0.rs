//! WIT `refract:projection@1.0.0`: its bindings, its host imports, and its answer to
//! `describe` converted into 1.1.0's (from there into the runtime's). The page calls
//! are shared with later versions (`calls.rs`).

use wasmtime::component::{HasSelf, Linker};

use super::since_v1_1::types;
use super::state::HostState;
use super::types::DOCUMENTS_OPTION;

mod bindings {
    wasmtime::component::bindgen!({
        world: "projector",
        path: "../wit/projection",
        // 1.1.0 only adds to 1.0.0's types: its bindings serve both (a 1.0.0
        // descriptor is a 1.1.0 descriptor).
        with: { "refract:projection/types@1.0.0": crate::runtime::since_v1_1::types },
    });
}

pub(crate) use bindings::{Projector, ProjectorPre};

/// The name under which a 1.0.0 projection exports its calls.
pub const PROJECTION_EXPORT: &str = "refract:projection/projection@1.0.0";

/// The name under which a 1.0.0 guest imports the types interface.
const TYPES_IMPORT: &str = "refract:projection/types@1.0.0";

/// Adds the 1.0.0 host imports to a linker.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    Projector::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    // Its types are 1.1.0's (see `with` above), so the bindings do not define the
    // (function-less) instance under 1.0.0's name: defined here for exact matches.
    linker.instance(TYPES_IMPORT)?;
    Ok(())
}

super::host::impl_host!(bindings::refract::projection::host);

/// Asks a 1.0.0 instance what it is, in 1.1.0's terms: its descriptor, and the
/// settings 1.0.0 could only say with options. 1.0.0 has no typed `documents`
/// (per-stream documents were the option `("documents", "per-stream")`, kept among
/// the options as given) and no maximum page size.
pub(crate) fn describe(
    projector: &Projector,
    store: &mut wasmtime::Store<HostState>,
) -> wasmtime::Result<(types::Descriptor, types::Settings)> {
    let d = projector
        .refract_projection_projection()
        .call_describe(store)?;
    let per_stream = d
        .options
        .iter()
        .any(|(k, v)| (k.as_str(), v.as_str()) == DOCUMENTS_OPTION);
    let settings = types::Settings {
        documents: if per_stream {
            types::DocumentMode::PerStream
        } else {
            types::DocumentMode::Custom
        },
        max_page_size: None,
    };
    Ok((d, settings))
}
