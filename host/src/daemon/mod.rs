//! The async daemon: one agent task per deployed projection version.

mod agent;
mod cache;
mod commits;
mod counters;
mod dead_letter_walk;
mod effects;
mod emit_budget;
mod emit_check;
mod failing;
pub(crate) mod lookup;
mod metrics;
mod page;
mod projector;
mod rebuild_stream;
mod running;
mod shared;
mod start;
mod subscription;
mod subscription_hold;
mod turns;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot, watch};

use agent::Control;
pub use agent::{PageBudget, PauseError};
use commits::CommitGate;
pub use counters::{LimitHits, Metrics};
pub use emit_budget::EmitBudget;
pub use page::Replayed;
pub use projector::PageProjector;
pub use rebuild_stream::{MAX_REBUILD_EVENTS, MAX_REBUILT_DOCS, RebuildError, StreamRebuilt};
use running::Running;
pub use shared::{ErrorPolicy, OnError};

use crate::outbox::{Grants, OutboxWaker};
use crate::runtime::Descriptor;
use crate::store::{ProjectionKey, Store};

/// Events per page unless configured otherwise. Measured on the 1M-event rebuild:
/// 1000 → 235k, 2000 → 258k, 5000 → 290k events/s (fewer commits, fewer calls).
pub const DEFAULT_PAGE_SIZE: usize = 5000;

/// Bytes of documents an agent keeps cached between pages unless configured
/// otherwise.
pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

/// Why the daemon could not do what was asked of a version.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// No agent runs for the version (retired, paused, or not deployed).
    #[error("{0} is not running (paused or retired)")]
    NotRunning(String),
    /// The agent tried and failed.
    #[error("{0}")]
    Failed(String),
    /// The version's kind does not do this.
    #[error("{0}")]
    Unsupported(String),
    /// The version may not touch what was asked (its team's access).
    #[error("{0}")]
    Forbidden(String),
    /// The store failed, or the agent is stopping or recovering: try again.
    #[error("{0}")]
    Unavailable(String),
}

impl From<String> for DaemonError {
    fn from(message: String) -> Self {
        Self::Failed(message)
    }
}

impl From<RebuildError> for DaemonError {
    fn from(e: RebuildError) -> Self {
        match e {
            RebuildError::Refused(m) => Self::Failed(m),
            RebuildError::Forbidden(m) => Self::Forbidden(m),
            RebuildError::Unavailable(m) => Self::Unavailable(m),
        }
    }
}

/// What a subscription agent needs besides the store.
#[derive(Clone)]
pub struct SubscriptionEnv {
    /// The team that owns the subscription (its grants apply).
    pub team: String,
    /// Every team's grants.
    pub grants: Arc<Grants>,
    /// The component's settings from the config.
    pub settings: Arc<std::collections::BTreeMap<String, String>>,
    /// Wakes the outbox worker after a commit with messages.
    pub outbox: OutboxWaker,
    /// What a failing `handle` leads to.
    pub policy: ErrorPolicy,
    /// What one page may emit (the team's budget).
    pub emit_budget: EmitBudget,
    /// Every team's append rate: emits over the team's wait before their commit.
    pub rates: Arc<crate::rate::AppendRates>,
    /// How far the name's other versions reached (their effects are not fired
    /// again): events up to there handle with effects held.
    pub others_reached: crate::store::Position,
    /// Whether the version is a standby, followed page by page: a standby's pages
    /// handle with effects held.
    pub standby: watch::Receiver<bool>,
}

/// Starts and stops agents.
pub struct Daemon {
    store: Arc<dyn Store>,
    page_size: usize,
    page_bytes: usize,
    cache_bytes: usize,
    /// The most events one stream's rebuild reads.
    rebuild_events: u64,
    max_event_bytes: usize,
    stop_grace: std::time::Duration,
    agents: Mutex<HashMap<ProjectionKey, Running>>,
    counters: Mutex<HashMap<ProjectionKey, Arc<counters::Counters>>>,
    /// Which streams each team's components are fed, emit to and read.
    teams: crate::teams::Teams,
    /// Each team's turns at the store, shared by the team's agents.
    turns: turns::TeamTurns,
}

impl Daemon {
    /// A daemon with no agents yet.
    pub fn new(store: Arc<dyn Store>, page_size: usize) -> Self {
        Self {
            store,
            page_size: page_size.max(1),
            page_bytes: crate::store::DEFAULT_PAGE_BYTES,
            cache_bytes: DEFAULT_CACHE_BYTES,
            rebuild_events: MAX_REBUILD_EVENTS,
            max_event_bytes: crate::store::DEFAULT_MAX_EVENT_BYTES,
            stop_grace: running::STOP_GRACE,
            agents: Mutex::new(HashMap::new()),
            counters: Mutex::new(HashMap::new()),
            teams: crate::teams::Teams::default(),
            turns: turns::TeamTurns::default(),
        }
    }

    /// The same daemon keeping each team's components to the streams the team's
    /// config allows (by default every team may use every stream).
    pub fn with_teams(mut self, teams: crate::teams::Teams) -> Self {
        self.teams = teams;
        self
    }

    /// The same daemon giving agents told to stop `grace` to finish their page
    /// before they are aborted (default 15 s).
    pub fn with_stop_grace(mut self, grace: std::time::Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    /// The same daemon with other byte budgets: event bytes per page and document
    /// bytes cached per projection version.
    pub fn with_budgets(mut self, page_bytes: usize, cache_bytes: usize) -> Self {
        self.page_bytes = page_bytes.max(1);
        self.cache_bytes = cache_bytes;
        self
    }

    /// The same daemon with another cap on the events one stream's rebuild reads.
    pub fn with_rebuild_events(mut self, events: u64) -> Self {
        self.rebuild_events = events.max(1);
        self
    }

    /// The largest event (data and metadata bytes) a subscription may emit.
    pub fn with_max_event_bytes(mut self, max_event_bytes: usize) -> Self {
        self.max_event_bytes = max_event_bytes;
        self
    }

    /// The configured events per page.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// Events per page for a component: the configured page size, or the guest's
    /// maximum if that is smaller.
    pub fn page_size_for(&self, descriptor: &Descriptor) -> usize {
        descriptor.page_size(self.page_size)
    }

    /// Runs a new agent for `key`. A running one is stopped first, and the new one
    /// starts only when the old one's task and its last commit have ended, so two
    /// agents of one version never write at once.
    fn install<F>(
        &self,
        key: ProjectionKey,
        stop: watch::Sender<bool>,
        control: Option<mpsc::Sender<Control>>,
        agent: impl FnOnce(CommitGate) -> F,
    ) where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut agents = self.agents.lock().unwrap_or_else(|p| p.into_inner());
        let old = agents.remove(&key);
        let running = Running::spawn(old, stop, control, self.stop_grace, agent);
        agents.insert(key, running);
    }

    /// Applies a projection version's dead letters again (after a fixed build is
    /// deployed); answers how many were applied.
    pub async fn replay_dead_letters(&self, key: &ProjectionKey) -> Result<Replayed, DaemonError> {
        self.ask(key, Control::ReplayDeadLetters).await
    }

    /// Rebuilds the documents `stream`'s events touch, in the version's agent
    /// (between its pages); answers what it did.
    pub async fn rebuild_stream(
        &self,
        key: &ProjectionKey,
        stream: crate::store::StreamId,
    ) -> Result<StreamRebuilt, DaemonError> {
        self.ask(key, |reply| Control::RebuildStream(stream, reply))
            .await
    }

    /// Sends a request to the version's running agent and waits for its answer.
    async fn ask<T, E: Into<DaemonError>>(
        &self,
        key: &ProjectionKey,
        request: impl FnOnce(oneshot::Sender<Result<T, E>>) -> Control,
    ) -> Result<T, DaemonError> {
        let control = {
            let agents = self.agents.lock().unwrap_or_else(|p| p.into_inner());
            agents
                .get(key)
                .filter(|r| !r.task.is_finished())
                .and_then(|r| r.control.clone())
        };
        let not_running = || DaemonError::NotRunning(key.to_string());
        let control = control.ok_or_else(not_running)?;
        let (reply, answer) = oneshot::channel();
        control
            .send(request(reply))
            .await
            .map_err(|_| not_running())?;
        answer.await.map_err(|_| not_running())?.map_err(Into::into)
    }

    /// The counters of a version (kept across restarts of its agent, zero after a
    /// daemon restart).
    fn counters_of(&self, key: &ProjectionKey) -> Arc<counters::Counters> {
        let mut all = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(key.clone()).or_default().clone()
    }

    /// How far a version is known to have projected beyond its stored progress
    /// (events of other types passed over, stored later), if its agent runs.
    pub fn known_position(&self, key: &ProjectionKey) -> crate::store::Position {
        let all = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        all.get(key).map_or(0, |c| c.position())
    }

    /// The counters of a version, for a read waiting until it has projected a
    /// sequence ([`counters::Counters::moved`]).
    pub fn watch_projected(&self, key: &ProjectionKey) -> Arc<counters::Counters> {
        self.counters_of(key)
    }

    /// A version's counters since the daemon started, if it has run.
    pub fn metrics(&self, key: &ProjectionKey) -> Option<Metrics> {
        let all = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        all.get(key).map(|c| c.snapshot())
    }

    /// Stops one version's agent and waits for its commit in flight to end, so the
    /// version's tables can be reset or dropped without a late write landing. On a
    /// store several nodes share, this node takes the version's lease over first
    /// (waiting for a commit of it in flight on another node): that node's agent
    /// commits nothing more, and no node claims the version while this one changes
    /// it (it holds the lease until it runs the version again or gives it back).
    pub async fn stop(&self, key: &ProjectionKey) {
        if let Some(cluster) = self.store.cluster()
            && cluster.node().is_some()
            && let Err(e) = cluster.claim(key, true).await
        {
            // Its holder's commits still check the lease, which expires unrenewed
            // only if the holder is gone; say so rather than hide it.
            tracing::error!(projection = %key, "cannot take the lease over: {e}");
        }
        self.stop_local(key).await;
    }

    /// Stops this process's agent of one version (as [`Daemon::stop`]), leaving its
    /// lease, if any, to the caller.
    pub async fn stop_local(&self, key: &ProjectionKey) {
        let entry = {
            let mut agents = self.agents.lock().unwrap_or_else(|p| p.into_inner());
            agents.remove(key)
        };
        if let Some(r) = entry {
            r.stop.send_replace(true);
            r.end().await;
        }
        // Its progress may be reset or dropped next: only the stored one counts.
        if let Some(c) = self
            .counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
        {
            c.forget();
        }
    }

    /// Whether an agent task is running for this version.
    pub fn is_running(&self, key: &ProjectionKey) -> bool {
        let agents = self.agents.lock().unwrap_or_else(|p| p.into_inner());
        agents.get(key).is_some_and(|r| !r.task.is_finished())
    }

    /// Signals every agent to stop after its current page and waits for them and
    /// their last commits.
    pub async fn shutdown(&self) {
        let all: Vec<Running> = {
            let mut agents = self.agents.lock().unwrap_or_else(|p| p.into_inner());
            agents.drain().map(|(_, r)| r).collect()
        };
        for r in &all {
            r.stop.send_replace(true);
        }
        // Together, so each agent's grace runs at the same time, not one after another.
        let mut ending = tokio::task::JoinSet::new();
        for r in all {
            ending.spawn(r.end());
        }
        while ending.join_next().await.is_some() {}
    }
}
