//! PostgreSQL: projection documents and progress.

use std::collections::HashMap;

use async_trait::async_trait;

use super::PgStore;
use crate::store::{
    DocOf, DocRead, DocumentStore, Later, PageCommit, Progress, ProjectionKey, RunStatus,
    StoreError,
};

#[async_trait]
impl DocumentStore for PgStore {
    async fn prepare_projection(&self, _key: &ProjectionKey) -> Result<(), StoreError> {
        todo!()
    }
    async fn prepare_subscription(&self, _key: &ProjectionKey) -> Result<(), StoreError> {
        todo!()
    }
    async fn drop_projection(&self, _key: &ProjectionKey) -> Result<(), StoreError> {
        todo!()
    }
    async fn load_docs_within(
        &self,
        _key: &ProjectionKey,
        _ids: &[&str],
        _max_bytes: usize,
    ) -> Result<Option<HashMap<String, String>>, StoreError> {
        todo!()
    }
    async fn has_docs(&self, _key: &ProjectionKey) -> Result<bool, StoreError> {
        todo!()
    }
    async fn doc_read(
        &self,
        _key: &ProjectionKey,
        _of: DocOf<'_>,
        _later: Later<'_>,
    ) -> Result<DocRead, StoreError> {
        todo!()
    }
    async fn get_doc(&self, _key: &ProjectionKey, _id: &str) -> Result<Option<String>, StoreError> {
        todo!()
    }
    async fn commit_page(
        &self,
        _key: &ProjectionKey,
        _page: &PageCommit,
    ) -> Result<(), StoreError> {
        todo!()
    }
    async fn progress(&self, _key: &ProjectionKey) -> Result<Progress, StoreError> {
        todo!()
    }
    async fn set_status(
        &self,
        _key: &ProjectionKey,
        _status: RunStatus,
        _error: Option<&str>,
    ) -> Result<(), StoreError> {
        todo!()
    }
}
