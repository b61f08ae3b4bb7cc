//! What differs between the WIT versions refract runs, in one place: the export a
//! component of each version has, its linked form, and its typed `describe`. All
//! versions' host imports are on the one linker; the page calls are shared.

use wasmtime::Store;
use wasmtime::component::{Instance, Linker};

use super::state::HostState;
use super::types::{Descriptor, WitVersion};
use super::{since_v1_0 as v1_0, since_v1_1 as v1_1, since_v1_2 as v1_2};

impl WitVersion {
    /// The name under which a projection of this version exports its calls.
    pub fn projection_export(self) -> &'static str {
        match self {
            Self::V1_0 => v1_0::EXPORT,
            Self::V1_1 => v1_1::EXPORT,
            Self::V1_2 => v1_2::EXPORT,
        }
    }
}

/// Adds the host imports of every version to the linker.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    v1_0::add_to_linker(linker)?;
    v1_1::add_to_linker(linker)?;
    v1_2::add_to_linker(linker)
}

/// Declares the enum of a component linked against one of the WIT versions of a
/// world (its variants the versions' generated `*Pre` types, each named like the
/// [`WitVersion`] it is), with `new`, `version` and `instance_pre`: written once for
/// the projector and the subscriber worlds.
macro_rules! linked {
    ($(#[$doc:meta])* $name:ident { $($v:ident: $ty:ty),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub enum $name {
            $(
                #[doc = concat!("Built against ", stringify!($v), ".")]
                $v($ty),
            )+
        }

        impl $name {
            /// Checks the linked component against `version`'s world.
            pub fn new(
                version: $crate::runtime::types::WitVersion,
                pre: wasmtime::component::InstancePre<$crate::runtime::state::HostState>,
            ) -> wasmtime::Result<Self> {
                use $crate::runtime::types::WitVersion as W;
                #[allow(unreachable_patterns)]
                Ok(match version {
                    $(W::$v => Self::$v(<$ty>::new(pre)?),)+
                    other => wasmtime::bail!(
                        "{} has no WIT version {other}",
                        stringify!($name)
                    ),
                })
            }

            /// The WIT version the component was built against.
            pub fn version(&self) -> $crate::runtime::types::WitVersion {
                use $crate::runtime::types::WitVersion as W;
                match self {
                    $(Self::$v(_) => W::$v,)+
                }
            }

            /// The untyped pre-instance.
            pub fn instance_pre(
                &self,
            ) -> &wasmtime::component::InstancePre<$crate::runtime::state::HostState> {
                match self {
                    $(Self::$v(p) => p.instance_pre(),)+
                }
            }
        }
    };
}

pub(crate) use linked;

linked! {
    /// A component linked as a projector of one WIT version, ready to instantiate.
    ProjectorPre {
        V1_0: v1_0::ProjectorPre<HostState>,
        V1_1: v1_1::ProjectorPre<HostState>,
        V1_2: v1_2::ProjectorPre<HostState>,
    }
}

/// An instance's typed bindings, for `describe`.
pub enum Projector {
    V1_0(v1_0::Projector),
    V1_1(v1_1::Projector),
    V1_2(v1_2::Projector),
}

impl ProjectorPre {
    /// The typed bindings of a fresh instance of this component.
    pub fn bindings(
        &self,
        store: &mut Store<HostState>,
        instance: &Instance,
    ) -> wasmtime::Result<Projector> {
        Ok(match self {
            Self::V1_0(_) => Projector::V1_0(v1_0::Projector::new(store, instance)?),
            Self::V1_1(_) => Projector::V1_1(v1_1::Projector::new(store, instance)?),
            Self::V1_2(_) => Projector::V1_2(v1_2::Projector::new(store, instance)?),
        })
    }
}

impl Projector {
    /// Calls `describe` (and what else the version has: `describe-settings`,
    /// `describe-collections`) and converts the answers into the runtime's descriptor.
    pub fn describe(&self, store: &mut Store<HostState>) -> wasmtime::Result<Descriptor> {
        let (described, version, collections) = match self {
            Self::V1_0(p) => (v1_0::describe(p, store)?, WitVersion::V1_0, Vec::new()),
            Self::V1_1(p) => (v1_1::describe(p, store)?, WitVersion::V1_1, Vec::new()),
            Self::V1_2(p) => {
                let described = v1_2::describe(p, store)?;
                (described, WitVersion::V1_2, v1_2::collections(p, store)?)
            }
        };
        let mut descriptor = Descriptor::from_wit(described, version);
        descriptor.collections = collections;
        Ok(descriptor)
    }
}
