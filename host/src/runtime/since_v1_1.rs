//! WIT `refract:projection@1.1.0`, the latest: its bindings, its host imports, and
//! its descriptor and settings converted into the runtime's descriptor. 1.1.0 only
//! adds to 1.0.0, so 1.0.0's bindings use this version's types. The page calls are
//! shared (`calls.rs`).

use wasmtime::component::{HasSelf, Linker};

use super::state::HostState;
use super::types::{ComponentKind, Descriptor, DocumentMode, WitVersion};

mod bindings {
    wasmtime::component::bindgen!({
        world: "projector",
        path: "../wit/projection-1.1.0",
    });
}

// `pub`: 1.0.0's bindings re-export it (the module itself is private to the runtime).
pub use bindings::refract::projection::types;
pub(crate) use bindings::{Projector, ProjectorPre};

/// The name under which a 1.1.0 projection exports its calls.
pub const PROJECTION_EXPORT: &str = "refract:projection/projection@1.1.0";

/// Adds the 1.1.0 host imports to a linker.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    Projector::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
}

impl types::Host for HostState {}

super::host::impl_host!(bindings::refract::projection::host);

/// Asks a 1.1.0 instance what it is (`describe`) and how to call it (`describe-settings`).
pub(crate) fn describe(
    projector: &Projector,
    store: &mut wasmtime::Store<HostState>,
) -> wasmtime::Result<(types::Descriptor, types::Settings)> {
    let calls = projector.refract_projection_projection();
    Ok((
        calls.call_describe(&mut *store)?,
        calls.call_describe_settings(store)?,
    ))
}

impl Descriptor {
    /// The runtime's descriptor of a component built against `wit_version`, from
    /// what it said in 1.1.0's terms.
    pub(crate) fn from_wit(
        d: types::Descriptor,
        settings: types::Settings,
        wit_version: WitVersion,
    ) -> Self {
        Self {
            name: d.name,
            version: d.version,
            kind: d.kind.into(),
            event_types: d.event_types,
            documents: settings.documents.into(),
            max_page_size: settings.max_page_size,
            options: d.options,
            wit_version,
        }
    }
}

impl From<types::ComponentKind> for ComponentKind {
    fn from(kind: types::ComponentKind) -> Self {
        match kind {
            types::ComponentKind::Projection => Self::Projection,
            types::ComponentKind::Subscription => Self::Subscription,
        }
    }
}

impl From<types::DocumentMode> for DocumentMode {
    fn from(mode: types::DocumentMode) -> Self {
        match mode {
            types::DocumentMode::PerStream => Self::PerStream,
            types::DocumentMode::Custom => Self::Custom,
        }
    }
}
