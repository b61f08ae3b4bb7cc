//! One agent per deployed projection version: page → slice → load → apply → one
//! transaction with the documents and the progress.
//!
//! # Invariants (what keeps every update)
//! 1. **One commit in flight, in order.** Page N's commit is spawned only after
//!    page N−1's has settled, and it runs while page N+1 is projected.
//! 2. **A document is only read from a state that includes every commit that wrote
//!    it.** Page N+1 loads documents while commit N may still run, so everything
//!    commit N writes must be in the cache: the cache ([`DocCache`]) evicts only
//!    between pages, only entries last touched before the page whose commit is in
//!    flight, after the commit before it settled. It is bounded by bytes (the
//!    version's budget plus at most one page's documents), never cleared wholesale
//!    while a commit runs.
//! 3. **A failed commit forgets everything it did not write.** Every path that
//!    settles a commit goes through [`Agent::settle`]; on failure it clears the
//!    cache, drops the page read ahead and forgets the position, so the next page
//!    starts from the stored progress (which the failed commit did not move).
//! 4. **Stopping waits for the last write.** A commit holds the version's
//!    [`CommitGate`] until it ends, even if its agent is aborted; the daemon waits
//!    on the gate before it resets, drops or restarts the version.
//!
//! # Failing pages
//! A guest failure never costs more than the events at fault: when the error names
//! an event, the events before it are projected on their own; when it does not (a
//! limit hit), the page is halved, down to one event. An event that fails on its
//! own is tried `attempts` times with a fresh instance and a doubling wait, then the
//! version pauses, or (policy `dead-letter`) records it as a dead letter in the same
//! transaction as the progress past it and goes on.

mod idle;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::ErrorPolicy;
use super::PageProjector;
use super::cache::DocCache;
use super::commits::Commits;
use super::metrics::{Burst, Phase};
use super::shared::{BACKOFF, MAX_WAIT};
pub(crate) use super::shared::{readable, record_pause, skipped};
use super::turns::Turn;
use crate::retry::{Backoff, Retry, RetryPolicy};
use crate::runtime::RuntimeError;
use crate::store::{
    Page, PageCommit, Position, ProjectionKey, ReadBudget, RunStatus, Store, StoreError,
};

/// How often at most progress over events of other types only is stored (it is
/// shown from memory meanwhile): thousands of versions would otherwise each commit
/// on every append.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// The waits after a failing page: from 100 ms, doubling up to 5 s.
pub(super) const PAGE_BACKOFF: Backoff = Backoff::new(Duration::from_millis(100), MAX_WAIT);

/// Why a page could not be projected.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PageError {
    #[error(transparent)]
    Guest(#[from] RuntimeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("guest call task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// The page looked up one of its own documents: projected again in pages of at
    /// most this many events, so every lookup sees every event before it.
    #[error("narrowed to {0} events a page: it looked up its own documents")]
    Narrow(usize),
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

/// Limits of one page read.
#[derive(Debug, Clone, Copy)]
pub struct PageBudget {
    /// Events per page at most.
    pub events: usize,
    /// Bytes of event data and metadata per page at most (one event always fits).
    pub bytes: usize,
    /// Bytes of documents a page may load from the store (its guest's result limit:
    /// a page's documents in are bounded like its documents out).
    pub doc_bytes: usize,
}

/// A request an agent handles between pages.
pub(crate) enum Control {
    /// Apply the version's dead letters again (after a fixed build); answers how
    /// many were applied.
    ReplayDeadLetters(oneshot::Sender<Result<super::page::Replayed, String>>),
    /// Rebuild the documents one stream's events touch (after a fixed build).
    RebuildStream(
        crate::store::StreamId,
        oneshot::Sender<Result<super::StreamRebuilt, super::RebuildError>>,
    ),
}

pub(crate) struct Agent {
    pub key: ProjectionKey,
    /// The streams its team may read: events of others are passed over (skipped).
    pub streams: crate::teams::Streams,
    pub projector: Arc<Mutex<Box<dyn PageProjector>>>,
    /// The projector's CPU deadline per call, for the host's watchdog.
    pub deadline: std::time::Duration,
    /// The team's instance slots (from the projector), waited for before each page.
    pub slots: Option<crate::runtime::InstanceSlots>,
    /// The team's turns at the store, taken for each page read and commit.
    pub turns: super::turns::StoreTurns,
    pub store: Arc<dyn Store>,
    pub event_types: Arc<[String]>,
    pub budget: PageBudget,
    pub policy: ErrorPolicy,
    pub shutdown: watch::Receiver<bool>,
    pub control: mpsc::Receiver<Control>,
    pub cache: DocCache,
    /// Where time went since the agent was last idle.
    pub burst: Burst,
    pub commits: Commits,
    /// Counters shown in the status.
    pub counters: Arc<super::counters::Counters>,
    /// Where the next read starts (the last page projected, committed or not);
    /// `None` after a failed commit: read the stored progress again.
    pub position: Option<Position>,
    /// Events per page now: the budget's, less while a failing page is narrowed.
    pub limit: usize,
    /// The next page, read while this one is projected (only during a backlog).
    pub ahead: Option<ReadAhead>,
    /// Failures of the page at the current position (the policy's attempts, with
    /// [`PAGE_BACKOFF`]).
    pub retry: Retry,
    /// Progress over events of other types only, not stored yet.
    pub pending: Option<PageCommit>,
    /// When progress was last stored.
    pub stored_at: Instant,
    /// The document set its commits write into, read with its progress at start.
    pub doc_set: Option<i64>,
    /// Whether inline appends move its progress too (an inline version): its
    /// commits then land only from the position they were projected from, and it
    /// looks at the stored progress before each page.
    pub shared: bool,
    /// Whether its `slice` looks documents up: each commit then lands before the
    /// next page is sliced, so a lookup sees every page before.
    pub lookups: bool,
    /// The stored position as of its last commit started (or its progress read).
    pub committed: Position,
    /// The most events one stream's rebuild reads.
    pub rebuild_events: u64,
}

/// What the loop does after a failing page.
pub(super) enum Next {
    Continue,
    Stop,
}

impl Agent {
    /// Runs until shutdown, or until a guest error pauses the projection.
    pub async fn run(mut self) {
        let mut wake = self.store.watch_head();
        let types = self.store.watch_types(&self.event_types);
        if let Err(e) = self.start().await {
            tracing::error!(projection = %self.key, "cannot start: {e}");
            return;
        }
        // The store's failures are the host's: waited out, never counted.
        let mut store_retry = Retry::new(RetryPolicy::forever(BACKOFF));
        while !*self.shutdown.borrow() {
            let Some(position) = self.position(&mut store_retry).await else {
                continue;
            };
            if let Ok(request) = self.control.try_recv() {
                self.handle(request).await;
                continue;
            }
            let started = Instant::now();
            let read = match self.ahead.take() {
                Some(mut task) => (&mut task.0).await.unwrap_or_else(|e| {
                    Err(StoreError::Invalid(format!("read-ahead task failed: {e}")))
                }),
                None => {
                    let Some(turn) = self.turns.read_unless_stopped(&self.shutdown).await else {
                        break;
                    };
                    self.read(position, turn).await
                }
            };
            self.burst.add(Phase::Read, started.elapsed());
            let page = match read {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(projection = %self.key, "reading events failed: {e}");
                    self.pause_for(store_retry.wait()).await;
                    continue;
                }
            };
            if page.events.is_empty() {
                if page.scanned_to > position {
                    self.passed_over(page.scanned_to, skipped(position, &page));
                }
                // An inline version's appends project only from its stored position:
                // what it passed over is stored at once, so they are not deferred.
                let due = self.shared || self.stored_at.elapsed() >= PROGRESS_EVERY;
                if let Some(commit) = self.pending.take_if(|_| due)
                    && self.commit(commit).await.is_err()
                {
                    continue;
                }
                if self.settle().await.is_err() {
                    continue;
                }
                // Every commit has landed: the position passed over is projected.
                if self.pending.is_some() {
                    self.counters.set_position(self.position.unwrap_or(0));
                }
                self.burst.finish(&self.key);
                self.idle(&mut wake, types.as_deref()).await;
                continue;
            }
            // A backlog (the page stopped short of the head, by count or by bytes):
            // read the next page while this one is projected.
            if page.scanned_to < *wake.borrow() {
                self.read_ahead(page.scanned_to);
            }
            let commit = PageCommit {
                position: page.scanned_to,
                skipped: skipped(position, &page),
                ..Default::default()
            };
            let events = Arc::new(page.events);
            match self.project(events.clone(), commit).await {
                Ok(()) => {
                    self.limit = (self.limit * 2).min(self.budget.events);
                    self.retry.succeeded();
                    store_retry.succeeded();
                }
                Err(PageError::Guest(e)) => {
                    if let Next::Stop = self.failed(e, position, &events).await {
                        return;
                    }
                }
                Err(PageError::Narrow(events)) => {
                    // Nothing of it was committed: read it again, shorter.
                    self.ahead = None;
                    self.limit = events.max(1);
                }
                Err(e) => {
                    tracing::warn!(projection = %self.key, "page failed, retrying: {e}");
                    let _ = self.settle().await;
                    self.reset();
                    self.pause_for(store_retry.wait()).await;
                }
            }
        }
        // Stopped while busy rather than idle: what it may pass over without a read
        // is stored all the same, so a paused version shows where it really was.
        if self.position.is_some() && self.settle().await.is_ok() {
            let head = *wake.borrow();
            self.pass_over_unread(head);
        }
        if let Some(commit) = self.pending.take() {
            let _ = self.commit(commit).await;
        }
        if let Err(e) = self.settle().await {
            tracing::warn!(projection = %self.key, "last commit before shutdown failed: {e}");
        }
    }

    /// The position to read after, reading the stored progress when it is unknown.
    async fn position(&mut self, store_retry: &mut Retry) -> Option<Position> {
        if let Some(p) = self.position {
            if self.shared && !self.commits.in_flight() {
                return self.moved_by_appends(p).await;
            }
            return Some(p);
        }
        if self.settle().await.is_ok() {
            match self.store.progress(&self.key).await {
                Ok(p) => {
                    self.position = Some(p.position);
                    self.committed = p.position;
                    return self.position;
                }
                Err(e) => tracing::warn!(projection = %self.key, "reading progress: {e}"),
            }
        }
        self.pause_for(store_retry.wait()).await;
        None
    }

    /// Settles the commit in flight; on failure forgets everything not committed.
    pub(super) async fn settle(&mut self) -> Result<(), StoreError> {
        if !self.commits.in_flight() {
            return Ok(());
        }
        let started = Instant::now();
        let result = self.commits.settle().await;
        self.burst.add(Phase::Commit, started.elapsed());
        if let Err(e) = &result {
            // An inline version's appends moving its progress on is no failure.
            if self.shared && matches!(e, StoreError::Conflict { .. }) {
                tracing::debug!(projection = %self.key, "an inline append projected first: {e}");
            } else {
                tracing::warn!(projection = %self.key, "commit failed, going back to the stored progress: {e}");
            }
            self.reset();
        }
        result
    }

    /// Forgets the position, the cache and the page read ahead: the store is the
    /// truth again.
    pub(super) fn reset(&mut self) {
        self.pending = None;
        self.counters.set_position(0);
        self.cache.clear();
        self.position = None;
        self.ahead = None;
        self.limit = self.limit.max(1);
    }

    /// An inline version's position `p`, or the stored one if its team's appends
    /// moved it on (their documents are stored: the cache and any page read ahead
    /// are stale).
    async fn moved_by_appends(&mut self, p: Position) -> Option<Position> {
        match self.store.progress(&self.key).await {
            Ok(stored) if stored.position > p => {
                self.reset();
                self.position = Some(stored.position);
                self.committed = stored.position;
                self.counters.set_position(stored.position);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(projection = %self.key, "reading progress: {e}"),
        }
        self.position
    }

    /// Settles the previous commit and starts this one (moving the position).
    pub(super) async fn commit(&mut self, mut commit: PageCommit) -> Result<(), StoreError> {
        self.settle().await?;
        if let Some(passed) = self.pending.take() {
            commit.skipped += passed.skipped;
            commit.position = commit.position.max(passed.position);
        }
        self.stored_at = Instant::now();
        commit.doc_set = self.doc_set;
        if self.shared {
            commit.base = Some(self.committed);
        }
        self.committed = commit.position;
        let (store, key, at) = (self.store.clone(), self.key.clone(), commit.position);
        let (turns, counters) = (self.turns.clone(), self.counters.clone());
        self.commits
            .spawn(async move {
                let _turn = turns.write().await;
                store.commit_page(&key, &commit).await?;
                counters.landed(at);
                Ok(())
            })
            .await;
        self.position = Some(at);
        Ok(())
    }

    /// A page read's budget now: the (possibly narrowed) page size and the bytes.
    fn read_budget(&self) -> ReadBudget {
        ReadBudget {
            events: self.limit,
            bytes: self.budget.bytes,
        }
    }

    fn read_ahead(&mut self, after: Position) {
        let (store, types) = (self.store.clone(), self.event_types.clone());
        let budget = self.read_budget();
        let (streams, turns) = (self.streams.clone(), self.turns.clone());
        self.ahead = Some(ReadAhead(tokio::spawn(async move {
            let _turn = turns.read().await;
            let page = store.read_page(after, Some(&types), budget).await?;
            Ok(readable(page, &streams))
        })));
    }

    /// Reads the page after `after` in the read turn it was given.
    async fn read(&self, after: Position, _turn: Turn) -> Result<Page, StoreError> {
        let page = self
            .store
            .read_page(after, Some(&self.event_types), self.read_budget())
            .await?;
        Ok(readable(page, &self.streams))
    }

    async fn start(&mut self) -> Result<(), StoreError> {
        let progress = self.store.progress(&self.key).await?;
        self.cache.set_whole(!self.store.has_docs(&self.key).await?);
        if progress.status != RunStatus::Running {
            tracing::info!(projection = %self.key, "resuming after restart (was paused)");
            self.store
                .set_status(&self.key, RunStatus::Running, None)
                .await?;
        }
        // A new start knows only the stored progress (it may have been reset).
        self.counters.forget();
        tracing::info!(projection = %self.key, position = progress.position, "agent started");
        self.position = Some(progress.position);
        self.committed = progress.position;
        self.doc_set = progress.doc_set;
        Ok(())
    }

    async fn handle(&mut self, request: Control) {
        match request {
            Control::ReplayDeadLetters(reply) => {
                let result = self.replay_dead_letters().await;
                let _ = reply.send(result);
            }
            Control::RebuildStream(stream, reply) => {
                let result = self.rebuild_stream(&stream).await;
                if let Err(e) = &result {
                    tracing::warn!(projection = %self.key, %stream, "rebuilding a stream failed: {e}");
                }
                let _ = reply.send(result);
            }
        }
    }

    /// Waits `wait`, or until shutdown.
    pub(super) async fn pause_for(&mut self, wait: Duration) {
        crate::retry::sleep_or_stop(wait, &mut self.shutdown).await;
    }

    pub(super) async fn pause(&self, e: RuntimeError) {
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
}

/// A page being read ahead. Dropped (the agent reset, failed or aborted), its read
/// is aborted too, so it holds none of the team's read turns for a page nobody wants.
pub(super) struct ReadAhead(JoinHandle<Result<Page, StoreError>>);

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.0.abort();
    }
}
