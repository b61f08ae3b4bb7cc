//! `Refract`: the one service type the HTTP API (and through it the CLI) drives.

mod cleanup;
mod dead_letters;
mod lifecycle;
mod pause;
mod per_team;
mod reads;
mod reload;
mod shadow;
mod uploads;

pub use dead_letters::{
    DEFAULT_DEAD_LETTER_PAGE, DeadLetterPage, MAX_DEAD_LETTER_PAGE, STATUS_DEAD_LETTERS,
};
pub use reads::{
    ConsistentDoc, DEFAULT_STREAM_PAGE, GUEST_READ_PERMITS, GUEST_READ_WAIT, MAX_CONSISTENT_SCAN,
    MAX_STREAM_PAGE, StreamPage,
};
pub use reload::{Reload, Reloaded};
pub use shadow::{CandidateStatus, Cause};

use lifecycle::spawn_auto_promote;

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::Mutex;

use crate::config::Config;
use crate::daemon::SubscriptionEnv;
use crate::daemon::{Daemon, PauseError};
use crate::deploy::{self, DeployError, Deployed, LifecycleError, VersionState};
use crate::outbox::{Grants, OutboxWaker};
use crate::runtime::{Loaded, Runtime, RuntimeError};
use crate::store::{
    AppendRequest, AppendResult, Components, Position, ProjectionKey, RunStatus, Store, StoreError,
};

/// What a service call can fail with; the API maps each to a status code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A store error (conflicts, invalid input, database).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A deploy error.
    #[error(transparent)]
    Deploy(#[from] DeployError),
    /// A lifecycle change was refused.
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
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

/// One projection version as `GET /projections` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectionStatus {
    /// The projection's name.
    pub name: String,
    /// Its version.
    pub version: u32,
    /// Lifecycle state (`live`, ...).
    pub state: String,
    /// `running` or `paused`.
    pub status: RunStatus,
    /// Everything up to this sequence is projected.
    pub position: Position,
    /// The store's last sequence when this was read.
    pub head: Position,
    /// How many sequence numbers it is behind.
    pub lag: i64,
    /// Events applied so far.
    pub events_applied: u64,
    /// Events of types it does not handle, passed over so far.
    pub events_skipped: u64,
    /// Share of the store's events it has passed, 0 to 100.
    pub percent_caught_up: f64,
    /// The event types it handles.
    pub event_types: Vec<String>,
    /// Why it is paused, if it is.
    pub error: Option<PauseError>,
    /// `projection` or `subscription`.
    pub kind: String,
    /// A subscription's emits and sends dropped while it caught up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effects_held: Option<u64>,
    /// A subscription's outbox: pending, delivered and failed messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbox: Option<crate::store::subscription::OutboxCounts>,
    /// How many events the version gave up on (policy dead-letter).
    pub dead_letter_count: u64,
    /// The first [`STATUS_DEAD_LETTERS`] of them, oldest first, with their errors
    /// (all of them: `GET /projections/{name}/versions/{v}/dead-letters`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letters: Option<Vec<crate::store::subscription::DeadLetter>>,
    /// The WIT version (of `refract:projection`, or of `refract:subscription`) it was
    /// built against (none if retired).
    pub wit: Option<crate::runtime::WitVersion>,
    /// Events per page it gets: the configured size or the guest's smaller maximum.
    pub page_size: Option<usize>,
    /// Counters since the daemon started: guest time, pages, events, errors, limit
    /// hits (none if it has not run since).
    pub metrics: Option<crate::daemon::Metrics>,
    /// A candidate build of this version (same-version reload or rebuild), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate: Option<CandidateStatus>,
}

/// The refract daemon's services over one store.
pub struct Refract {
    store: Arc<dyn Store>,
    runtime: Runtime,
    daemon: Daemon,
    components_dir: PathBuf,
    deploy_lock: Arc<Mutex<()>>,
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
    /// Candidate builds projecting into shadow tables.
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
    /// Opens the data directory's SQLite store, restores deployed components and
    /// starts their agents.
    pub async fn open(config: &Config) -> Result<Self, ServiceError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            ServiceError::Startup(format!("cannot create {}: {e}", config.data_dir.display()))
        })?;
        // The data directory's SQLite file: the one backend there is so far.
        let location = crate::store::Location::from(config.database_path());
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
            .with_max_event_bytes(config.max_event_bytes);
        let teams = config.teams().map_err(ServiceError::Startup)?;
        let daemon = daemon.with_teams(teams.clone());
        let deploy_lock = Arc::new(Mutex::new(()));
        for rec in store.components().await? {
            if rec.auto_promote && VersionState::parse(&rec.state) == VersionState::CatchingUp {
                spawn_auto_promote(store.clone(), deploy_lock.clone(), rec.key);
            }
        }
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
            deploy_lock,
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
        };
        svc.drop_stale_shadows().await?;
        let restored = deploy::restore(
            &svc.runtime,
            svc.store.as_ref(),
            &svc.components_dir,
            &svc.teams,
        )
        .await?;
        svc.load_operator_pauses(&restored).await?;
        for (rec, loaded) in restored {
            svc.run(rec.key, &rec.team, loaded);
        }
        Ok(svc)
    }

    /// Starts a stopped version again with the code it ran before (a replacement of
    /// its code failed): what served keeps serving.
    fn run_previous(&self, key: ProjectionKey, team: &str) {
        let previous = self.loaded_components().get(&key).cloned();
        if let Some(previous) = previous {
            self.run(key, team, previous);
        }
    }

    /// Starts the agent of `team`'s version `key` (either kind) under the team's
    /// limits, and remembers its component.
    fn run(&self, key: ProjectionKey, team: &str, mut loaded: Loaded) {
        self.under_team(team, &mut loaded);
        if self.keep_paused(&key) {
            self.loaded_components().insert(key, loaded);
            return;
        }
        match &loaded {
            Loaded::Projection(l) => {
                let policy = Config::error_policy(self.components.get(&key.name));
                self.daemon.start_projection(key.clone(), l, policy);
            }
            Loaded::Subscription(l) => {
                let config = self.components.get(&key.name);
                let env = SubscriptionEnv {
                    team: team.into(),
                    grants: self.grants.clone(),
                    settings: Arc::new(config.map(|c| c.settings.clone()).unwrap_or_default()),
                    outbox: self.outbox.clone(),
                    policy: Config::error_policy(config),
                    emit_budget: self.teams.team(team).emits.unwrap_or(self.emits),
                    rates: self.rates.clone(),
                };
                self.daemon.start_subscription(key.clone(), l, env);
            }
        }
        self.loaded_components().insert(key, loaded);
    }

    /// Makes `loaded` run under `team`'s limits and instance slots.
    fn under_team(&self, team: &str, loaded: &mut Loaded) {
        if let Some(mut limits) = self.teams.team(team).limits {
            // The engine's stack limit is the one that applies (and is quoted).
            limits.max_stack_bytes = self.runtime.limits().max_stack_bytes;
            loaded.set_limits(limits);
        }
        loaded.set_slots(self.slots_of(team));
    }

    /// `team`'s instance slots: its instances at once, whatever its components do.
    fn slots_of(&self, team: &str) -> crate::runtime::InstanceSlots {
        self.slots.get(team, || {
            crate::runtime::InstanceSlots::new(team, self.teams.max_instances(team))
        })
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

    /// Deploys a component for `team` from its wasm bytes and starts its agent; with
    /// `auto_promote`, a version deployed beside a live one is promoted once caught up.
    pub async fn deploy(
        &self,
        wasm: Vec<u8>,
        auto_promote: bool,
        team: &str,
    ) -> Result<Deployed, ServiceError> {
        // Compile and describe first, outside the lock and under the team's limits:
        // a guest's describe must never hold another team's deploy.
        let sha256 = cleanup::sha256_hex(&wasm);
        let loaded = self.load_upload(team, wasm).await;
        let _one_at_a_time = self.deploy_lock.lock().await;
        let result = match loaded {
            Ok((loaded, wasm)) => self.deploy_locked(loaded, wasm, auto_promote, team).await,
            Err(e) => Err(e),
        };
        if result.is_err() {
            // A refused upload leaves no compiled artifact or wasm behind (unless a
            // deployed version uses the same code). Under the lock: a deploy of the
            // same code in flight registers first.
            self.remove_unused_code(&sha256).await;
        }
        result
    }

    /// [`Refract::deploy`] under the deploy lock, once compiled and described.
    async fn deploy_locked(
        &self,
        loaded: Loaded,
        wasm: Vec<u8>,
        auto_promote: bool,
        team: &str,
    ) -> Result<Deployed, ServiceError> {
        let key = deploy::key_in(team, &loaded);
        if let Some(max) = self.teams.team(team).max_components {
            let comps = self.store.components_where(Components::Team(team)).await?;
            let has = |c: &&crate::store::ComponentRecord| {
                c.team == team && VersionState::parse(&c.state) != VersionState::Retired
            };
            let existing = comps.iter().filter(has).any(|c| c.key == key);
            let count = comps.iter().filter(has).count();
            if !existing && count >= max {
                return Err(LifecycleError::TooManyComponents {
                    team: team.into(),
                    max,
                }
                .into());
            }
        }
        let (out, loaded) = deploy::register(
            self.store.as_ref(),
            &self.components_dir,
            loaded,
            &wasm,
            auto_promote,
            team,
        )
        .await?;
        if let Some(loaded) = loaded {
            self.run_new(key, team, loaded, &out, auto_promote);
        }
        Ok(out)
    }

    /// Starts the agent of a newly registered version and remembers its component.
    fn run_new(
        &self,
        key: ProjectionKey,
        team: &str,
        loaded: Loaded,
        out: &Deployed,
        auto_promote: bool,
    ) {
        self.run(key.clone(), team, loaded);
        if auto_promote && out.state == VersionState::CatchingUp.as_str() {
            spawn_auto_promote(self.store.clone(), self.deploy_lock.clone(), key);
        }
    }

    /// Every deployed version of `team` (every team's for `None`) whose (internal)
    /// name is `visible`, with its progress; nothing is read for the others.
    pub async fn projections(
        &self,
        team: Option<&str>,
        visible: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Vec<ProjectionStatus>, ServiceError> {
        let head = self.store.head().await?;
        let mut out = Vec::new();
        let which = team.map_or(Components::All, Components::Team);
        for rec in self.store.components_where(which).await? {
            if !visible(&rec.key.name) {
                continue;
            }
            let state = VersionState::parse(&rec.state);
            let p = match state {
                // A retired version's progress went with its documents.
                VersionState::Retired => crate::store::Progress {
                    position: 0,
                    events_applied: 0,
                    events_skipped: 0,
                    effects_held: 0,
                    status: RunStatus::Paused,
                    error: None,
                },
                _ => self.store.progress(&rec.key).await?,
            };
            let mut p = p;
            if state != VersionState::Retired {
                // Events of other types passed over are stored later; shown now.
                p.position = p.position.max(self.daemon.known_position(&rec.key));
            }
            let lag = (head - p.position).max(0);
            let error = p.error.as_deref().map(|text| {
                serde_json::from_str(text).unwrap_or_else(|_| PauseError {
                    component: rec.key.to_string(),
                    event_sequence: None,
                    message: text.to_owned(),
                    fault: crate::runtime::Fault::Host,
                })
            });
            let outbox = match rec.kind.as_str() {
                "subscription" => Some(self.store.outbox_counts(&rec.key).await?),
                _ => None,
            };
            let dead_letter_count = self.store.dead_letter_count(&rec.key).await?;
            let dead_letters = match dead_letter_count {
                0 => Vec::new(),
                _ => {
                    let first = self
                        .store
                        .dead_letter_page(&rec.key, 0, STATUS_DEAD_LETTERS);
                    first.await?
                }
            };
            let running = match self.loaded_components().get(&rec.key) {
                Some(Loaded::Projection(l)) => {
                    let d = &l.descriptor;
                    Some((d.wit_version, self.daemon.page_size_for(d)))
                }
                Some(Loaded::Subscription(l)) => {
                    let d = &l.descriptor;
                    Some((d.wit_version, d.page_size(self.daemon.page_size())))
                }
                None => None,
            };
            let metrics = self.daemon.metrics(&rec.key);
            let candidate = self.candidate_status(&rec.key, head).await?;
            out.push(ProjectionStatus {
                name: rec.key.name,
                version: rec.key.version,
                state: state.shown(lag).to_owned(),
                status: p.status,
                position: p.position,
                head,
                lag,
                events_applied: p.events_applied,
                events_skipped: p.events_skipped,
                percent_caught_up: if head == 0 {
                    100.0
                } else {
                    (p.position as f64 * 1000.0 / head as f64).round() / 10.0
                },
                event_types: rec.event_types,
                error,
                effects_held: (rec.kind == "subscription").then_some(p.effects_held),
                outbox,
                dead_letter_count,
                dead_letters: Some(dead_letters),
                kind: rec.kind,
                metrics,
                wit: running.map(|(wit, _)| wit),
                page_size: running.map(|(_, size)| size),
                candidate,
            });
        }
        Ok(out)
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
        found.map(|c| c.key.clone()).ok_or_else(|| {
            ServiceError::ProjectionNotFound(match version {
                Some(v) => format!("projection {name} version {v}"),
                None => format!("projection {name}"),
            })
        })
    }

    /// Stops the agents and the outbox worker, and closes the store.
    pub async fn shutdown(&self) {
        // The outbox first: deliveries in flight are abandoned (sent after restart)
        // while the agents stop, instead of holding the shutdown after them.
        self.stop_outbox.send_replace(true);
        self.daemon.shutdown().await;
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
