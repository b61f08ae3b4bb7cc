//! `Refract`: the one service type the HTTP API (and through it the CLI) drives.

mod after;
mod agents;
mod cleanup;
mod cluster;
mod dead_letters;
mod deploying;
mod doc_list;
mod inline;
mod lifecycle;
mod live;
mod pause;
mod per_team;
mod reads;
mod reload;
mod shadow;
mod status;
mod uploads;

pub use after::{DEFAULT_AFTER_TIMEOUT, DEFAULT_WAITING_READS, MAX_AFTER_TIMEOUT};
pub use cluster::{ClusterNode, ClusterView};
pub use dead_letters::{
    DEFAULT_DEAD_LETTER_PAGE, DeadLetterPage, MAX_DEAD_LETTER_PAGE, STATUS_DEAD_LETTERS,
};
pub use doc_list::{DocPage, ListedDoc};
pub use reads::{
    ConsistentDoc, DEFAULT_STREAM_PAGE, GUEST_READ_PERMITS, GUEST_READ_WAIT, MAX_CONSISTENT_SCAN,
    MAX_STREAM_PAGE, StreamPage,
};
pub use reload::{Reload, Reloaded};
pub use shadow::{CandidateStatus, Cause};
pub use status::ProjectionStatus;

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::config::Config;
use crate::daemon::Daemon;
use crate::deploy::{DeployError, Lifecycle, LifecycleError, VersionState};
use crate::outbox::{Grants, OutboxWaker};
use crate::runtime::{Loaded, Runtime, RuntimeError};
use crate::store::{AppendRequest, AppendResult, Components, ProjectionKey, Store, StoreError};

/// What a service call can fail with; the API maps each to a status code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A store error (conflicts, invalid input, database).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A deploy error.
    #[error(transparent)]
    Deploy(#[from] DeployError),
    /// A lifecycle change was refused (its store failures are `Store`).
    #[error(transparent)]
    Lifecycle(LifecycleError),
    /// Something asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The stream has no events.
    #[error("{0} not found")]
    StreamNotFound(String),
    /// No projection (or version) of that name the caller may see.
    #[error("{0} not found")]
    ProjectionNotFound(String),
    /// The projection has no document of that id.
    #[error("{0} not found")]
    DocumentNotFound(String),
    /// A stream's aggregate was asked of a projection whose documents are not its
    /// streams; the message names the read to use instead.
    #[error("{0}")]
    CustomDocuments(String),
    /// The caller's team may not touch that stream; the message names only what
    /// the caller asked for.
    #[error("{0}")]
    Forbidden(String),
    /// A consistent read would have to scan more events than it may.
    #[error("{0}")]
    TooFarBehind(String),
    /// Too many request-driven guest reads are running; retry shortly.
    #[error("{0}")]
    Busy(String),
    /// Starting up failed.
    #[error("{0}")]
    Startup(String),
    /// A version did not get where it was waited for (paused, or too slow).
    #[error("{0}")]
    Stalled(String),
    /// A read waiting with `after=` did not see the version get there: it is paused
    /// (at once), or the wait ran out; `reached` is where it stands.
    #[error("{message}")]
    Behind {
        /// What it waited for and where the version stands.
        message: String,
        /// The sequence the version has projected up to.
        reached: crate::store::Position,
        /// Whether it is paused (else the time ran out).
        paused: bool,
    },
    /// A guest failed while serving a request (a write-model read).
    #[error(transparent)]
    Guest(#[from] RuntimeError),
    /// A running version could not do what was asked.
    #[error(transparent)]
    Daemon(#[from] crate::daemon::DaemonError),
    /// The team appends faster than its `appends_per_s`.
    #[error(transparent)]
    RateLimited(#[from] crate::rate::RateLimited),
}

/// The refract daemon's services over one store.
pub struct Refract {
    store: Arc<dyn Store>,
    runtime: Runtime,
    daemon: Daemon,
    components_dir: PathBuf,
    locks: crate::deploy::DeployLocks,
    /// Lifecycle states and what agents are told of them; promotes.
    lifecycle: Lifecycle,
    /// The compiled component of every running version (write-model reads, reloads).
    loaded: std::sync::Mutex<std::collections::HashMap<ProjectionKey, Loaded>>,
    /// What subscriptions may reach, by team.
    grants: Arc<Grants>,
    /// Who may call, and each team's permissions and limits.
    teams: crate::teams::Teams,
    /// Per-component settings from the config.
    components: std::collections::BTreeMap<String, crate::config::ComponentConfig>,
    outbox: OutboxWaker,
    outbox_task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    stop_outbox: tokio::sync::watch::Sender<bool>,
    /// Candidate builds projecting into shadow documents.
    candidates: shadow::Candidates,
    /// Permits for request-driven guest reads (consistent documents, aggregates).
    guest_reads: reads::GuestReads,
    /// Each team's uploads being compiled.
    uploads: uploads::Uploads,
    /// The daemon's emit budget (a team's own replaces it).
    emits: crate::daemon::EmitBudget,
    /// Every team's append rate, shared by HTTP appends and emits.
    rates: Arc<crate::rate::AppendRates>,
    /// Versions an operator paused: never started until resumed (kept in the store).
    operator_paused: pause::OperatorPaused,
    /// Each team's instance slots (made on first use).
    slots: per_team::PerTeam<crate::runtime::InstanceSlots>,
    /// Each team's reads waiting with `after=` (made on first use).
    waits: per_team::PerTeam<Arc<tokio::sync::Semaphore>>,
    /// This node among several on one store (unused on SQLite).
    membership: cluster::Membership,
}

/// A write-model read: a stream's document as of its latest event.
#[derive(Debug, Clone, Serialize)]
pub struct Aggregate {
    /// The stream (and document) id.
    pub id: String,
    /// The stream's version the document reflects: append with it as
    /// `expected_version` for optimistic concurrency.
    pub version: u64,
    /// The document's JSON, if the stream's events made one.
    pub document: Option<Box<serde_json::value::RawValue>>,
}

impl Refract {
    /// Opens the configured store (the data directory's SQLite file unless told
    /// otherwise), restores deployed components and starts their agents (on a
    /// store several nodes share, this node's share of them, as it claims leases).
    pub async fn open(config: &Config) -> Result<Arc<Self>, ServiceError> {
        let svc = Arc::new(Self::open_alone(config).await?);
        svc.start_cluster();
        Ok(svc)
    }

    /// [`Refract::open`] without the cluster's balancer.
    async fn open_alone(config: &Config) -> Result<Self, ServiceError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            ServiceError::Startup(format!("cannot create {}: {e}", config.data_dir.display()))
        })?;
        let location = config.location()?;
        let options = crate::store::OpenOptions {
            max_event_bytes: config.max_event_bytes,
        };
        let store = crate::store::open(&location, &options).await?;
        let teams = config.teams().map_err(ServiceError::Startup)?;
        let runtime = Runtime::with_pool(
            Some(config.data_dir.join("cache")),
            config.limits.clone(),
            teams.pool_instances(),
        )
        .map_err(|e: RuntimeError| ServiceError::Startup(e.to_string()))?;
        let components_dir = config.data_dir.join("components");
        let daemon = Daemon::new(store.clone(), config.page_size)
            .with_budgets(config.page_bytes, config.cache_bytes)
            .with_rebuild_events(config.rebuild_max_events)
            .with_max_event_bytes(config.max_event_bytes);
        let teams = config.teams().map_err(ServiceError::Startup)?;
        let daemon = daemon.with_teams(teams.clone());
        let locks = crate::deploy::DeployLocks::new(teams.names()).across(store.clone());
        let lifecycle = Lifecycle::new(store.clone(), locks.clone());
        let grants = Grants::new(teams.outbound_hosts())
            .with_listen(config.listen)
            .with_max_body_bytes(config.max_outbox_bytes);
        grants.validate().map_err(ServiceError::Startup)?;
        let grants = Arc::new(grants);
        let rates = Arc::new(teams.append_rates());
        let outbox = OutboxWaker::default();
        let stop_outbox = tokio::sync::watch::channel(false).0;
        let outbox_task = crate::outbox::spawn(
            store.clone(),
            (*grants).clone(),
            std::time::Duration::from_millis(config.outbox_timeout_ms.max(1)),
            outbox.clone(),
            stop_outbox.subscribe(),
        );
        let svc = Self {
            store,
            runtime,
            daemon,
            components_dir,
            locks,
            lifecycle,
            loaded: std::sync::Mutex::new(Default::default()),
            grants,
            teams,
            components: config.components.clone(),
            outbox,
            outbox_task: std::sync::Mutex::new(Some(outbox_task)),
            stop_outbox,
            candidates: Default::default(),
            guest_reads: Default::default(),
            uploads: Default::default(),
            emits: config.emits,
            rates,
            operator_paused: Default::default(),
            slots: Default::default(),
            waits: Default::default(),
            membership: Default::default(),
        };
        let mut svc = svc;
        if svc.store.cluster().is_some() {
            // Every version is loaded here (reads, lifecycle calls) but its agent
            // starts where its lease is claimed, by the balancer (`start_cluster`).
            // Loaded before joining: a node counts as alive only once it can work.
            let restored = (svc.lifecycle)
                .restore(&svc.runtime, &svc.components_dir, &svc.teams, false)
                .await?;
            for (rec, loaded) in restored {
                svc.loaded_components().insert(rec.key, loaded);
            }
            svc.join_cluster(config).await?;
            svc.drop_orphan_shadows().await?;
            // A first round before the API answers: this node's share runs (and
            // its versions paused by their guest are resumed) as after a restart.
            if let Err(e) = svc.balance().await {
                tracing::warn!("first cluster round: {e}");
            }
            return Ok(svc);
        }
        svc.drop_stale_shadows().await?;
        let restored = (svc.lifecycle)
            .restore(&svc.runtime, &svc.components_dir, &svc.teams, true)
            .await?;
        svc.load_operator_pauses(&restored).await?;
        for (rec, loaded) in restored {
            let waits_for_promote =
                rec.auto_promote && VersionState::parse(&rec.state) == VersionState::CatchingUp;
            svc.run(rec.key.clone(), &rec.team, loaded).await;
            // A live version is never behind: the watcher waiting for it to catch up
            // would wait for ever.
            if waits_for_promote && svc.is_live(&rec.key) {
                let _one_at_a_time = svc.locks.team(&rec.team).await;
                if let Err(e) = svc.lifecycle.promote(&rec, true).await {
                    tracing::warn!(projection = %rec.key, "auto-promote: {e}");
                }
            }
        }
        Ok(svc)
    }

    /// The configured teams.
    pub fn teams(&self) -> &crate::teams::Teams {
        &self.teams
    }

    /// The store, for embedding and tests.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Takes room for an append of `events` by `team` within its `appends_per_s`,
    /// or refuses it.
    pub fn take_append_rate(&self, team: &str, events: usize) -> Result<(), ServiceError> {
        Ok(self.rates.try_take(team, events)?)
    }

    /// Appends events to a stream.
    pub async fn append(&self, req: AppendRequest) -> Result<AppendResult, ServiceError> {
        Ok(self.store.append(req).await?)
    }

    fn loaded_components(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<ProjectionKey, Loaded>> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The version a query goes to: the named one, else the live one.
    async fn resolve(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<ProjectionKey, ServiceError> {
        Ok(self.resolve_record(name, version).await?.key)
    }

    /// The record of the version a query goes to ([`Refract::resolve`]).
    async fn resolve_record(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<crate::store::ComponentRecord, ServiceError> {
        let comps = self.store.components_where(Components::Name(name)).await?;
        let found = comps
            .iter()
            // Ownership after the lookup: a record of another team is not found.
            .filter(|c| c.team == crate::teams::team_of(name))
            .filter(|c| version.is_none_or(|v| c.key.version == v))
            .filter(|c| match version {
                Some(_) => VersionState::parse(&c.state) != VersionState::Retired,
                None => VersionState::parse(&c.state) == VersionState::Live,
            })
            .max_by_key(|c| c.key.version);
        found.cloned().ok_or_else(|| {
            ServiceError::ProjectionNotFound(match version {
                Some(v) => format!("projection {name} version {v}"),
                None => format!("projection {name}"),
            })
        })
    }

    /// Stops the agents and the outbox worker, and closes the store.
    pub async fn shutdown(&self) {
        // Nothing is claimed from here on.
        self.stop_cluster(false).await;
        // The outbox first: deliveries in flight are abandoned (sent after restart)
        // while the agents stop, instead of holding the shutdown after them.
        self.stop_outbox.send_replace(true);
        self.daemon.shutdown().await;
        self.stop_cluster(true).await;
        self.leave_cluster().await;
        let task = self
            .outbox_task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
        self.store.close().await;
    }
}
