//! Subscriptions on PostgreSQL: a handled page's emits, outbox rows and progress in
//! one transaction; the outbox queries of the delivery worker.

use async_trait::async_trait;

use super::PgStore;
use crate::store::subscription::{
    DeadLetter, HandledPage, OutboxCounts, OutboxMessage, SubscriptionStore,
};
use crate::store::{AppendResult, Position, ProjectionKey, StoreError};

#[async_trait]
impl SubscriptionStore for PgStore {
    async fn commit_handled(
        &self,
        _key: &ProjectionKey,
        _team: &str,
        _page: &HandledPage,
    ) -> Result<Vec<AppendResult>, StoreError> {
        todo!()
    }
    async fn due_messages(
        &self,
        _now: i64,
        _limit: usize,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        todo!()
    }
    async fn due_teams(&self, _now: i64) -> Result<Vec<String>, StoreError> {
        todo!()
    }
    async fn due_team_messages(
        &self,
        _team: &str,
        _now: i64,
        _limit: usize,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        todo!()
    }
    async fn message_delivered(&self, _seq: i64) -> Result<(), StoreError> {
        todo!()
    }
    async fn message_failed(
        &self,
        _seq: i64,
        _error: &str,
        _retry_at: Option<i64>,
    ) -> Result<(), StoreError> {
        todo!()
    }
    async fn outbox_counts(&self, _key: &ProjectionKey) -> Result<OutboxCounts, StoreError> {
        todo!()
    }
    async fn dead_letter_count(&self, _key: &ProjectionKey) -> Result<u64, StoreError> {
        todo!()
    }
    async fn dead_letter_page(
        &self,
        _key: &ProjectionKey,
        _after: Position,
        _limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        todo!()
    }
    async fn rewind(
        &self,
        _key: &ProjectionKey,
        _position: Position,
        _replay_effects: bool,
    ) -> Result<(), StoreError> {
        todo!()
    }
    async fn effects_high_water(&self, _key: &ProjectionKey) -> Result<Position, StoreError> {
        todo!()
    }
}
