//! One agent per deployed projection version: page → slice → load → apply → one
//! transaction with the documents and the progress.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::PageProjector;
use super::metrics::{Burst, Phase};
pub(crate) use super::shared::{back_off, record_pause, skipped};
use crate::runtime::{DocChange, DocInput, RuntimeError, Slice};
use crate::store::{
    DocWrite, Page, Position, ProjectionKey, RecordedEvent, RunStatus, Store, StoreError,
};

/// How long an idle agent sleeps when no wake-up comes (appends by another process).
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Tries of a page whose guest call fails before the version pauses.
const GUEST_ATTEMPTS: u32 = 3;
/// Documents kept in an agent's cache before it is cleared.
const CACHE_LIMIT: usize = 200_000;

/// Why a page could not be projected.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PageError {
    #[error(transparent)]
    Guest(#[from] RuntimeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("guest call task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// The error a paused projection shows in its status.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PauseError {
    /// The component (`name@vN`).
    pub component: String,
    /// The event it failed on, when known.
    pub event_sequence: Option<i64>,
    /// What went wrong.
    pub message: String,
    /// Who was at fault: `guest` or `host`.
    pub fault: crate::runtime::Fault,
}

pub(crate) struct Agent {
    pub key: ProjectionKey,
    pub projector: Arc<Mutex<Box<dyn PageProjector>>>,
    pub store: Arc<dyn Store>,
    pub event_types: Arc<[String]>,
    pub page_size: usize,
    pub shutdown: watch::Receiver<bool>,
    /// Known documents: `None` means known not to exist.
    pub cache: HashMap<String, Option<String>>,
    /// The cache holds every document of the table (it started empty and nothing was
    /// evicted since): a miss means "does not exist", with no query.
    pub cache_is_whole: bool,
    /// Where time went since the agent was last idle.
    pub burst: Burst,
    /// The commit of the last page, running while the next one is projected.
    pub pending: InFlight,
    /// Counters shown in the status.
    pub counters: Arc<super::counters::Counters>,
}

/// An agent's commit in flight, shared with the daemon: stopping an agent waits for
/// it, so that nothing of the stopped agent lands after, say, a hot reload's reset.
#[derive(Clone, Default)]
pub(crate) struct InFlight(Arc<Mutex<Option<CommitTask>>>);

type CommitTask = JoinHandle<Result<(), StoreError>>;

impl InFlight {
    fn put(&self, task: CommitTask) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
    }

    /// The commit in flight, if any, leaving none.
    pub fn take(&self) -> Option<CommitTask> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl Agent {
    /// Runs until shutdown, or until a guest error pauses the projection.
    pub async fn run(mut self) {
        let mut wake = self.store.watch_head();
        // Where the next read starts: the last page projected, committed or not yet.
        let mut position = match self.start().await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(projection = %self.key, "cannot start: {e}");
                return;
            }
        };
        let mut backoff = Duration::from_millis(50);
        let (mut guest_failures, mut guest_backoff) = (0, Duration::from_millis(100));
        // The next page, read while this one is projected (only during a backlog).
        let mut ahead: Option<JoinHandle<Result<Page, StoreError>>> = None;
        while !*self.shutdown.borrow() {
            let started = Instant::now();
            let read = match ahead.take() {
                Some(task) => task.await.unwrap_or_else(|e| {
                    Err(StoreError::Invalid(format!("read-ahead task failed: {e}")))
                }),
                None => self.read(position).await,
            };
            self.burst.add(Phase::Read, started.elapsed());
            let page = match read {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(projection = %self.key, "reading events failed: {e}");
                    self.pause_for(&mut backoff).await;
                    continue;
                }
            };
            if page.events.is_empty() {
                let saved = match self.settle().await {
                    Ok(()) if page.scanned_to > position => {
                        let skipped = skipped(position, &page);
                        self.store
                            .commit_page(&self.key, &[], page.scanned_to, 0, skipped)
                            .await
                    }
                    other => other,
                };
                match saved {
                    Ok(()) => position = position.max(page.scanned_to),
                    Err(e) => {
                        position = self.recover(e.into(), position, &mut backoff).await;
                        continue;
                    }
                }
                self.burst.finish(&self.key);
                self.idle(&mut wake, position).await;
                continue;
            }
            let scanned_to = page.scanned_to;
            if page.events.len() >= self.page_size {
                let (store, types, size) =
                    (self.store.clone(), self.event_types.clone(), self.page_size);
                ahead = Some(tokio::spawn(async move {
                    store.read_page(scanned_to, Some(&types), size).await
                }));
            }
            let skipped = skipped(position, &page);
            match self.project(page, skipped).await {
                Ok(()) => {
                    position = scanned_to;
                    backoff = Duration::from_millis(50);
                    (guest_failures, guest_backoff) = (0, Duration::from_millis(100));
                }
                Err(PageError::Guest(e)) => {
                    // What was projected before the failing page is kept.
                    if let Err(se) = self.settle().await {
                        tracing::warn!(projection = %self.key, "last commit failed: {se}");
                    }
                    guest_failures += 1;
                    self.counters.error(&e);
                    if guest_failures >= GUEST_ATTEMPTS {
                        self.pause(e).await;
                        return;
                    }
                    // A fresh instance gets another go, after a wait: never a hot loop.
                    tracing::warn!(
                        projection = %self.key,
                        attempt = guest_failures,
                        "guest failed, retrying with a fresh instance: {e}"
                    );
                    ahead = None;
                    self.pause_for(&mut guest_backoff).await;
                    continue;
                }
                Err(e) => {
                    // The page read ahead follows a page that was not committed.
                    ahead = None;
                    position = self.recover(e, position, &mut backoff).await;
                }
            }
        }
        if let Err(e) = self.settle().await {
            tracing::warn!(projection = %self.key, "last commit before shutdown failed: {e}");
        }
    }

    /// Waits for the commit in flight, if any.
    async fn settle(&mut self) -> Result<(), StoreError> {
        let Some(task) = self.pending.take() else {
            return Ok(());
        };
        let started = Instant::now();
        let result = task
            .await
            .unwrap_or_else(|e| Err(StoreError::Invalid(format!("commit task failed: {e}"))));
        self.burst.add(Phase::Commit, started.elapsed());
        result
    }

    /// After a store failure: forgets everything not committed, backs off, and
    /// returns the committed position to go on from.
    async fn recover(
        &mut self,
        e: PageError,
        position: Position,
        backoff: &mut Duration,
    ) -> Position {
        tracing::warn!(projection = %self.key, "page failed, retrying: {e}");
        let _ = self.settle().await;
        self.forget_cache();
        self.pause_for(backoff).await;
        match self.store.progress(&self.key).await {
            Ok(p) => p.position,
            Err(pe) => {
                tracing::warn!(projection = %self.key, "reading progress: {pe}");
                position
            }
        }
    }

    async fn read(&self, after: Position) -> Result<Page, StoreError> {
        self.store
            .read_page(after, Some(&self.event_types), self.page_size)
            .await
    }

    async fn start(&mut self) -> Result<Position, StoreError> {
        let progress = self.store.progress(&self.key).await?;
        self.cache_is_whole = !self.store.has_docs(&self.key).await?;
        if progress.status != RunStatus::Running {
            tracing::info!(projection = %self.key, "resuming after restart (was paused)");
            self.store
                .set_status(&self.key, RunStatus::Running, None)
                .await?;
        }
        tracing::info!(projection = %self.key, position = progress.position, "agent started");
        Ok(progress.position)
    }

    /// Waits for new events, a poll interval, or shutdown.
    async fn idle(&mut self, wake: &mut watch::Receiver<Position>, position: Position) {
        if *wake.borrow_and_update() > position {
            return;
        }
        tokio::select! {
            _ = wake.changed() => {}
            _ = tokio::time::sleep(IDLE_POLL) => {}
            _ = self.shutdown.changed() => {}
        }
    }

    async fn pause_for(&mut self, backoff: &mut Duration) {
        back_off(&mut self.shutdown, backoff).await;
    }

    async fn pause(&self, e: RuntimeError) {
        let m = self.counters.snapshot();
        tracing::error!(
            projection = %self.key,
            guest_ms = m.guest_ms,
            pages = m.pages,
            events = m.events,
            errors = m.errors,
            cpu_limit_hits = m.limit_hits.cpu,
            memory_limit_hits = m.limit_hits.memory,
            stack_limit_hits = m.limit_hits.stack,
            result_limit_hits = m.limit_hits.result,
            "pausing after repeated guest failures"
        );
        record_pause(self.store.as_ref(), &self.key, &e).await;
    }

    /// Projects one page and commits it with the progress.
    async fn project(&mut self, page: Page, skipped: u64) -> Result<(), PageError> {
        let applied = page.events.len() as u64;
        let events = Arc::new(page.events);
        let t = Instant::now();
        let slices = self.call(&events, |p, page| p.slice(page)).await?;
        self.burst.add(Phase::Slice, t.elapsed());
        self.counters.guest_time(t.elapsed());
        let t = Instant::now();
        self.load_missing(&slices).await?;
        self.burst.add(Phase::Load, t.elapsed());
        let inputs: Vec<DocInput> = slices
            .iter()
            .map(|s| DocInput {
                id: s.doc_id.clone(),
                state: self.cache.get(&s.doc_id).cloned().flatten(),
                events: s.events.clone(),
            })
            .collect();
        let t = Instant::now();
        let changes = self
            .call(&events, move |p, page| p.apply(page, inputs))
            .await?;
        self.burst.add(Phase::Apply, t.elapsed());
        self.counters.guest_time(t.elapsed());
        self.counters.page(applied as usize);
        let mut writes = Vec::with_capacity(changes.len());
        for (slice, change) in slices.into_iter().zip(changes) {
            match change {
                DocChange::Put(body) => {
                    self.cache.insert(slice.doc_id.clone(), Some(body.clone()));
                    writes.push(DocWrite::Put {
                        id: slice.doc_id,
                        body,
                    });
                }
                DocChange::Delete => {
                    self.cache.insert(slice.doc_id.clone(), None);
                    writes.push(DocWrite::Delete { id: slice.doc_id });
                }
                DocChange::Keep => {}
            }
        }
        // Commits run one at a time, in order, each while the next page is projected:
        // the cache already holds every document a commit in flight writes.
        self.settle().await?;
        let (store, key, at) = (self.store.clone(), self.key.clone(), page.scanned_to);
        self.pending.put(tokio::spawn(async move {
            store.commit_page(&key, &writes, at, applied, skipped).await
        }));
        self.burst.page(applied as usize);
        if self.cache.len() > CACHE_LIMIT {
            self.forget_cache();
        }
        Ok(())
    }

    fn forget_cache(&mut self) {
        self.cache.clear();
        self.cache_is_whole = false;
    }

    /// Fills the cache with the documents the page touches that it does not know.
    async fn load_missing(&mut self, slices: &[Slice]) -> Result<(), StoreError> {
        let missing: Vec<&str> = slices
            .iter()
            .map(|s| s.doc_id.as_str())
            .filter(|id| !self.cache.contains_key(*id))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if self.cache_is_whole {
            for id in missing {
                self.cache.insert(id.to_owned(), None);
            }
            return Ok(());
        }
        let mut found = self.store.load_docs(&self.key, &missing).await?;
        for id in missing {
            let body = found.remove(id);
            self.cache.insert(id.to_owned(), body);
        }
        Ok(())
    }

    /// Runs a projector call on a blocking thread: wasmtime calls are synchronous and
    /// WASI must not block a tokio worker.
    async fn call<R: Send + 'static>(
        &self,
        page: &Arc<Vec<RecordedEvent>>,
        f: impl FnOnce(&mut dyn PageProjector, &[RecordedEvent]) -> Result<R, RuntimeError>
        + Send
        + 'static,
    ) -> Result<R, PageError> {
        let projector = self.projector.clone();
        let page = page.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut p = projector
                .lock()
                .map_err(|_| RuntimeError::Host("projector lock poisoned".into()))?;
            f(p.as_mut(), &page)
        })
        .await?;
        Ok(result?)
    }
}
