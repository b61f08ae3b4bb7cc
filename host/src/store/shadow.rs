//! Shadow builds: a candidate build of a projection version projects into its own
//! documents and progress under an internal key, then takes the version's place in
//! one transaction.

use async_trait::async_trait;

use super::{ComponentRecord, ProjectionKey, StoreError};

/// What marks an internal shadow name (never a real component's name): the
/// namespace rule's, re-exported for the store.
pub use crate::identity::SHADOW_SUFFIX;

impl ProjectionKey {
    /// The internal key a candidate build of this version projects under.
    pub fn shadow(&self) -> ProjectionKey {
        ProjectionKey {
            name: format!("{}{SHADOW_SUFFIX}", self.name),
            version: self.version,
        }
    }
}

/// Swapping a shadow in.
#[async_trait]
pub trait ShadowStore: Send + Sync {
    /// In one transaction: drops `rec.key`'s documents, renames its shadow's table to
    /// the real name, moves the shadow's progress (and dead letters) over the real
    /// ones and records `rec` (the candidate's code) in the registry. The agents of
    /// both must be stopped.
    async fn swap_shadow(&self, rec: &ComponentRecord) -> Result<(), StoreError>;
}
