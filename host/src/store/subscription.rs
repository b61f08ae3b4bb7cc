//! What subscriptions need from the store: a handled page committed in one
//! transaction with the events it emitted, the messages it queued and its progress;
//! and the outbox that the delivery worker drains after commit.

use async_trait::async_trait;
use serde::Serialize;

use super::{AppendRequest, AppendResult, Position, ProjectionKey, StoreError};

/// A message a subscription queued, delivered only after its page commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Stable id (the same message queued again, by a replay, is not queued twice):
    /// receivers deduplicate on it.
    pub id: String,
    /// Where it is POSTed.
    pub url: String,
    /// The JSON body.
    pub body: String,
    /// The event being handled when it was queued.
    pub event_sequence: Option<Position>,
}

/// Everything one handled page produced.
#[derive(Debug, Clone, Default)]
pub struct HandledPage {
    /// Appends the subscription emitted, in order; each is checked like any append.
    pub emits: Vec<AppendRequest>,
    /// Messages for the outbox.
    pub messages: Vec<NewMessage>,
    /// The progress after the page.
    pub position: Position,
    /// Events handed to the subscription.
    pub handled: u64,
    /// Events of other types passed over.
    pub skipped: u64,
    /// Emits and sends dropped because side effects were held (catch-up).
    pub held: u64,
    /// An event given up on, recorded with the page (policy dead-letter).
    pub dead_letter: Option<DeadLetter>,
}

/// An event a subscription version gave up on, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// The event's sequence.
    pub sequence: Position,
    /// The error of its last attempt.
    pub error: String,
}

/// An outbox row, as the delivery worker and the status see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxMessage {
    /// Row id: delivery order.
    pub seq: i64,
    /// The stable message id.
    pub id: String,
    /// The subscription version that queued it.
    pub subscription: ProjectionKey,
    /// The team of that subscription (its grants decide where it may go).
    pub team: String,
    /// Where it goes.
    pub url: String,
    /// The JSON body.
    pub body: String,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// Outbox counts of one subscription version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OutboxCounts {
    /// Waiting for (another) delivery attempt.
    pub pending: u64,
    /// Delivered.
    pub delivered: u64,
    /// Given up on after the last retry.
    pub failed: u64,
    /// Why the latest undelivered message failed its last attempt, if one did.
    pub last_error: Option<String>,
}

/// Subscription pages and the outbox.
#[async_trait]
pub trait SubscriptionStore: Send + Sync {
    /// Commits a handled page: the emitted appends, the outbox messages and the
    /// progress, all or nothing. A conflicting emit fails it all (the page is
    /// handled again with fresh reads).
    async fn commit_handled(
        &self,
        key: &ProjectionKey,
        team: &str,
        page: &HandledPage,
    ) -> Result<Vec<AppendResult>, StoreError>;

    /// Up to `limit` undelivered messages whose next attempt is due at `now`.
    async fn due_messages(&self, now: i64, limit: usize) -> Result<Vec<OutboxMessage>, StoreError>;

    /// The teams with undelivered messages due at `now` (each team's are delivered
    /// apart from the others').
    async fn due_teams(&self, now: i64) -> Result<Vec<String>, StoreError>;

    /// Up to `limit` of `team`'s undelivered messages due at `now`.
    async fn due_team_messages(
        &self,
        team: &str,
        now: i64,
        limit: usize,
    ) -> Result<Vec<OutboxMessage>, StoreError>;

    /// Records a delivery.
    async fn message_delivered(&self, seq: i64) -> Result<(), StoreError>;

    /// Records a failed attempt: retried at `retry_at`, or given up on when `None`.
    async fn message_failed(
        &self,
        seq: i64,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<(), StoreError>;

    /// The outbox counts of one subscription version.
    async fn outbox_counts(&self, key: &ProjectionKey) -> Result<OutboxCounts, StoreError>;

    /// The events a version dead-lettered, oldest first (all of them: for tests and
    /// tools; the daemon and the API read them a page at a time).
    async fn dead_letters(&self, key: &ProjectionKey) -> Result<Vec<DeadLetter>, StoreError> {
        self.dead_letter_page(key, 0, i64::MAX as usize).await
    }

    /// How many events a version dead-lettered.
    async fn dead_letter_count(&self, key: &ProjectionKey) -> Result<u64, StoreError>;

    /// Up to `limit` of a version's dead letters with a sequence after `after`,
    /// oldest first.
    async fn dead_letter_page(
        &self,
        key: &ProjectionKey,
        after: Position,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError>;

    /// Moves a version's progress to `position` (replay from there); its agent must
    /// be stopped. With `replay_effects`, its effects high-water mark comes down to
    /// `position` too, so the replayed events' emits and sends are performed again.
    async fn rewind(
        &self,
        key: &ProjectionKey,
        position: Position,
        replay_effects: bool,
    ) -> Result<(), StoreError>;

    /// The furthest position this version ever committed (0 if none): kept across
    /// rewinds, rebuilds and reloads, so the events up to it handle with effects held.
    async fn effects_high_water(&self, key: &ProjectionKey) -> Result<Position, StoreError>;
}
