//! PostgreSQL: swapping a shadow build in.

use async_trait::async_trait;

use super::PgStore;
use crate::store::shadow::ShadowStore;
use crate::store::{ComponentRecord, StoreError};

#[async_trait]
impl ShadowStore for PgStore {
    async fn swap_shadow(&self, _rec: &ComponentRecord) -> Result<(), StoreError> {
        todo!()
    }
}
