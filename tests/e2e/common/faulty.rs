//! A real SQLite store behind a wrapper that can fail or slow down page commits:
//! the daemon-level tests of the agent's failure paths.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use async_trait::async_trait;
use refract::store::shadow::ShadowStore;
use refract::store::subscription::{
    DeadLetter, HandledPage, OutboxCounts, OutboxMessage, SubscriptionStore,
};
use refract::store::*;
use tokio::sync::watch;

/// The wrapper: every call goes to the real store (the tests' backend), but page
/// commits obey the knobs.
pub struct Faulty {
    pub inner: Arc<dyn Store>,
    /// Commits (1-based) that fail, by number.
    pub fail_commits: std::sync::Mutex<Vec<u64>>,
    /// How long each commit waits before it writes.
    pub commit_delay_ms: AtomicU64,
    /// Commits started and finished (written or failed).
    pub started: AtomicU64,
    pub finished: AtomicU64,
    /// Set while a commit runs.
    pub in_commit: AtomicBool,
    /// Commits that wrote after `fence` was raised.
    pub fence: AtomicBool,
    pub after_fence: AtomicUsize,
}

impl Faulty {
    pub fn new(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            fail_commits: Default::default(),
            commit_delay_ms: AtomicU64::new(0),
            started: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            in_commit: AtomicBool::new(false),
            fence: AtomicBool::new(false),
            after_fence: AtomicUsize::new(0),
        })
    }
}

impl Faulty {
    /// Waits (up to 10 s) until a page commit is running.
    pub async fn wait_for_a_commit(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !self.in_commit.load(SeqCst) {
            assert!(std::time::Instant::now() < deadline, "no commit started");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Right after a stop: no commit runs, and none lands during `watch`.
    pub async fn assert_nothing_lands(&self, watch: Duration) {
        assert!(
            !self.in_commit.load(SeqCst),
            "stop returned with a commit in flight"
        );
        assert_eq!(self.started.load(SeqCst), self.finished.load(SeqCst));
        self.fence.store(true, SeqCst);
        tokio::time::sleep(watch).await;
        assert_eq!(
            self.after_fence.load(SeqCst),
            0,
            "a commit landed after stop"
        );
        self.fence.store(false, SeqCst);
    }
}

#[async_trait]
impl EventStore for Faulty {
    async fn append(&self, req: AppendRequest) -> Result<AppendResult, StoreError> {
        self.inner.append(req).await
    }
    async fn stream_version(&self, s: &StreamId) -> Result<u64, StoreError> {
        self.inner.stream_version(s).await
    }
    async fn read_stream(
        &self,
        s: &StreamId,
        from: u64,
    ) -> Result<(u64, Vec<RecordedEvent>), StoreError> {
        self.inner.read_stream(s, from).await
    }
    async fn read_stream_page(
        &self,
        s: &StreamId,
        from: u64,
        limit: usize,
    ) -> Result<(u64, Vec<RecordedEvent>), StoreError> {
        self.inner.read_stream_page(s, from, limit).await
    }
    async fn read_page(
        &self,
        after: Position,
        types: Option<&[String]>,
        budget: ReadBudget,
    ) -> Result<Page, StoreError> {
        self.inner.read_page(after, types, budget).await
    }
    async fn read_events(
        &self,
        seqs: &[Position],
        max_bytes: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_events(seqs, max_bytes).await
    }
    async fn head(&self) -> Result<Position, StoreError> {
        self.inner.head().await
    }
    async fn idempotency_key(
        &self,
        t: &str,
        k: &str,
    ) -> Result<Option<(String, AppendResult)>, StoreError> {
        self.inner.idempotency_key(t, k).await
    }
    async fn position_at_time(&self, micros: i64) -> Result<Position, StoreError> {
        self.inner.position_at_time(micros).await
    }
    fn watch_head(&self) -> watch::Receiver<Position> {
        self.inner.watch_head()
    }
}

#[async_trait]
impl DocumentStore for Faulty {
    async fn prepare_projection(&self, key: &ProjectionKey) -> Result<(), StoreError> {
        self.inner.prepare_projection(key).await
    }
    async fn prepare_subscription(&self, key: &ProjectionKey) -> Result<(), StoreError> {
        self.inner.prepare_subscription(key).await
    }
    async fn drop_projection(&self, key: &ProjectionKey) -> Result<(), StoreError> {
        self.inner.drop_projection(key).await
    }
    async fn load_docs_within(
        &self,
        key: &ProjectionKey,
        ids: &[&str],
        max_bytes: usize,
    ) -> Result<Option<HashMap<String, String>>, StoreError> {
        self.inner.load_docs_within(key, ids, max_bytes).await
    }
    async fn has_docs(&self, key: &ProjectionKey) -> Result<bool, StoreError> {
        self.inner.has_docs(key).await
    }
    async fn doc_read(
        &self,
        key: &ProjectionKey,
        of: DocOf<'_>,
        later: Later<'_>,
    ) -> Result<DocRead, StoreError> {
        self.inner.doc_read(key, of, later).await
    }
    async fn get_doc(&self, key: &ProjectionKey, id: &str) -> Result<Option<String>, StoreError> {
        self.inner.get_doc(key, id).await
    }
    async fn list_docs(
        &self,
        key: &ProjectionKey,
        q: &refract::store::DocQuery,
    ) -> Result<refract::store::DocList, StoreError> {
        self.inner.list_docs(key, q).await
    }
    async fn commit_page(&self, key: &ProjectionKey, page: &PageCommit) -> Result<(), StoreError> {
        let n = self.started.fetch_add(1, SeqCst) + 1;
        self.in_commit.store(true, SeqCst);
        let delay = self.commit_delay_ms.load(SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let fail = self
            .fail_commits
            .lock()
            .map(|f| f.contains(&n))
            .unwrap_or(false);
        let result = if fail {
            Err(StoreError::Invalid(format!(
                "injected failure of commit {n}"
            )))
        } else {
            if self.fence.load(SeqCst) {
                self.after_fence.fetch_add(1, SeqCst);
            }
            self.inner.commit_page(key, page).await
        };
        self.in_commit.store(false, SeqCst);
        self.finished.fetch_add(1, SeqCst);
        result
    }
    async fn progress(&self, key: &ProjectionKey) -> Result<Progress, StoreError> {
        self.inner.progress(key).await
    }
    async fn set_status(
        &self,
        key: &ProjectionKey,
        status: RunStatus,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.inner.set_status(key, status, error).await
    }
}

#[async_trait]
impl Registry for Faulty {
    async fn save_component(&self, rec: &ComponentRecord) -> Result<(), StoreError> {
        self.inner.save_component(rec).await
    }
    async fn components_where(
        &self,
        which: Components<'_>,
    ) -> Result<Vec<ComponentRecord>, StoreError> {
        self.inner.components_where(which).await
    }
    async fn set_states(&self, changes: &[(ProjectionKey, &str)]) -> Result<(), StoreError> {
        self.inner.set_states(changes).await
    }
}

#[async_trait]
impl SubscriptionStore for Faulty {
    async fn commit_handled(
        &self,
        key: &ProjectionKey,
        team: &str,
        page: &HandledPage,
    ) -> Result<Vec<AppendResult>, StoreError> {
        self.inner.commit_handled(key, team, page).await
    }
    async fn due_messages(&self, now: i64, limit: usize) -> Result<Vec<OutboxMessage>, StoreError> {
        self.inner.due_messages(now, limit).await
    }
    async fn due_teams(&self, now: i64) -> Result<Vec<String>, StoreError> {
        self.inner.due_teams(now).await
    }
    async fn due_team_messages(
        &self,
        team: &str,
        now: i64,
        limit: usize,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        self.inner.due_team_messages(team, now, limit).await
    }
    async fn message_delivered(&self, seq: i64) -> Result<(), StoreError> {
        self.inner.message_delivered(seq).await
    }
    async fn message_failed(
        &self,
        seq: i64,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<(), StoreError> {
        self.inner.message_failed(seq, error, retry_at).await
    }
    async fn outbox_counts(&self, key: &ProjectionKey) -> Result<OutboxCounts, StoreError> {
        self.inner.outbox_counts(key).await
    }
    async fn dead_letter_count(&self, key: &ProjectionKey) -> Result<u64, StoreError> {
        self.inner.dead_letter_count(key).await
    }
    async fn dead_letter_page(
        &self,
        key: &ProjectionKey,
        after: Position,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        self.inner.dead_letter_page(key, after, limit).await
    }
    async fn rewind(
        &self,
        key: &ProjectionKey,
        position: Position,
        replay_effects: bool,
    ) -> Result<(), StoreError> {
        self.inner.rewind(key, position, replay_effects).await
    }
    async fn effects_high_water(&self, key: &ProjectionKey) -> Result<Position, StoreError> {
        self.inner.effects_high_water(key).await
    }
}

#[async_trait]
impl ShadowStore for Faulty {
    async fn swap_shadow(&self, rec: &ComponentRecord) -> Result<(), StoreError> {
        self.inner.swap_shadow(rec).await
    }
}

#[async_trait]
impl Store for Faulty {
    async fn close(&self) {
        self.inner.close().await
    }
}
