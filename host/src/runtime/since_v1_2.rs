//! WIT `refract:projection@1.2.0`, the latest: its bindings, its host imports, and
//! its descriptor, settings and collections converted into the runtime's descriptor.
//! 1.2.0 only adds to 1.1.0's types, so the older versions' bindings use this
//! version's types. The page calls are shared (`calls.rs`); 1.2.0's name each
//! document by its key (collection and id).

use super::types::{ComponentKind, Descriptor, DocumentMode, WitVersion};

super::bindings::bind_wit!(projector "1.2.0" at "../wit/projection-1.2.0");

impl bindings::refract::projection::host::Host for super::state::HostState {
    super::host::host_fns!(bindings::refract::projection::host);

    fn lookup(&mut self, docs: Vec<types::DocKey>) -> Result<Vec<Option<String>>, String> {
        let Some(lookups) = self.lookups.as_mut() else {
            return Err(
                "lookup: only `slice` and `apply` may look documents up, and only in a \
                 component declaring the descriptor option (\"lookups\", \"true\")"
                    .into(),
            );
        };
        lookups.admit(docs.len())?;
        let keys = docs
            .into_iter()
            .map(|d| super::calls::join_key(d.collection, d.id).map_err(|m| format!("lookup: {m}")))
            .collect::<Result<Vec<String>, String>>()?;
        lookups.answer(&keys)
    }
}

/// Asks an instance which named collections it writes (`describe-collections`).
pub(crate) fn collections(
    bindings: &Projector,
    store: &mut wasmtime::Store<super::state::HostState>,
) -> wasmtime::Result<Vec<String>> {
    bindings
        .refract_projection_projection()
        .call_describe_collections(store)
}

impl Descriptor {
    /// The runtime's descriptor of a component built against `wit_version`, from
    /// what it said in the latest version's terms (no collections: see
    /// [`Descriptor::collections`]).
    pub(crate) fn from_wit((d, settings): Described, wit_version: WitVersion) -> Self {
        Self {
            name: d.name,
            version: d.version,
            kind: d.kind.into(),
            event_types: d.event_types,
            documents: settings.documents.into(),
            max_page_size: settings.max_page_size,
            options: d.options,
            collections: Vec::new(),
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
