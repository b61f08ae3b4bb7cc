//! PostgreSQL: the registry of deployed components.

use async_trait::async_trait;

use super::PgStore;
use crate::store::{ComponentRecord, Components, ProjectionKey, Registry, StoreError};

#[async_trait]
impl Registry for PgStore {
    async fn save_component(&self, _rec: &ComponentRecord) -> Result<(), StoreError> {
        todo!()
    }
    async fn components_where(
        &self,
        _which: Components<'_>,
    ) -> Result<Vec<ComponentRecord>, StoreError> {
        todo!()
    }
    async fn set_states(&self, _changes: &[(ProjectionKey, &str)]) -> Result<(), StoreError> {
        todo!()
    }
}
