//! What differs between the WIT versions refract runs, in one place: the export a
//! component of each version has, its linked form, and its typed `describe`. All
//! versions' host imports are on the one linker; the page calls are shared.

use wasmtime::Store;
use wasmtime::component::{Instance, InstancePre, Linker};

use super::state::HostState;
use super::types::{Descriptor, WitVersion};
use super::{since_v1_0 as v1_0, since_v1_1 as v1_1};

impl WitVersion {
    /// The name under which a projection of this version exports its calls.
    pub fn projection_export(self) -> &'static str {
        match self {
            Self::V1_0 => v1_0::PROJECTION_EXPORT,
            Self::V1_1 => v1_1::PROJECTION_EXPORT,
        }
    }
}

/// Adds the host imports of every version to the linker.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    v1_0::add_to_linker(linker)?;
    v1_1::add_to_linker(linker)
}

/// A component linked as a projector of one WIT version, ready to instantiate.
#[derive(Clone)]
pub(crate) enum ProjectorPre {
    V1_0(v1_0::ProjectorPre<HostState>),
    V1_1(v1_1::ProjectorPre<HostState>),
}

/// An instance's typed bindings, for `describe`.
pub(crate) enum Projector {
    V1_0(v1_0::Projector),
    V1_1(v1_1::Projector),
}

impl ProjectorPre {
    /// Checks the linked component against `version`'s world.
    pub fn new(version: WitVersion, pre: InstancePre<HostState>) -> wasmtime::Result<Self> {
        Ok(match version {
            WitVersion::V1_0 => Self::V1_0(v1_0::ProjectorPre::new(pre)?),
            WitVersion::V1_1 => Self::V1_1(v1_1::ProjectorPre::new(pre)?),
        })
    }

    /// The WIT version the component was built against.
    pub fn version(&self) -> WitVersion {
        match self {
            Self::V1_0(_) => WitVersion::V1_0,
            Self::V1_1(_) => WitVersion::V1_1,
        }
    }

    /// The untyped pre-instance.
    pub fn instance_pre(&self) -> &InstancePre<HostState> {
        match self {
            Self::V1_0(p) => p.instance_pre(),
            Self::V1_1(p) => p.instance_pre(),
        }
    }

    /// The typed bindings of a fresh instance of this component.
    pub fn bindings(
        &self,
        store: &mut Store<HostState>,
        instance: &Instance,
    ) -> wasmtime::Result<Projector> {
        Ok(match self {
            Self::V1_0(_) => Projector::V1_0(v1_0::Projector::new(store, instance)?),
            Self::V1_1(_) => Projector::V1_1(v1_1::Projector::new(store, instance)?),
        })
    }
}

impl Projector {
    /// Calls `describe` and converts the answer into the runtime's descriptor.
    pub fn describe(&self, store: &mut Store<HostState>) -> wasmtime::Result<Descriptor> {
        let ((descriptor, settings), version) = match self {
            Self::V1_0(p) => (v1_0::describe(p, store)?, WitVersion::V1_0),
            Self::V1_1(p) => (v1_1::describe(p, store)?, WitVersion::V1_1),
        };
        Ok(Descriptor::from_wit(descriptor, settings, version))
    }
}
