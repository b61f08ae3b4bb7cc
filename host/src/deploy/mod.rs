//! The registry of deployed components: stores the wasm in the data directory,
//! records it, prepares its tables, and brings everything back after a restart.

mod lifecycle;

use std::path::{Path, PathBuf};

pub use lifecycle::{LifecycleError, VersionState};

use crate::runtime::{Loaded, Runtime, RuntimeError, StartPosition};
use crate::store::{
    ComponentRecord, Components, ProjectionKey, RunStatus, Store, StoreError, now_micros,
};

pub use crate::teams::DEFAULT_TEAM;

/// What can go wrong deploying a component.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The component is unusable (not a component, wrong world, bad descriptor, trap).
    #[error(transparent)]
    Component(#[from] RuntimeError),
    /// This name and version are already deployed with other code.
    #[error(
        "{key} is already deployed with different code (sha256 {existing}); \
         deploy a new version instead"
    )]
    VersionTaken {
        /// The projection version.
        key: ProjectionKey,
        /// Hash of the code deployed under it.
        existing: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The component file could not be saved or read.
    #[error("component file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Where the wasm of a component with this hash is kept.
pub fn wasm_path(components_dir: &Path, sha256: &str) -> PathBuf {
    components_dir.join(format!("{sha256}.wasm"))
}

/// The outcome of a deploy.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Deployed {
    /// The projection's name.
    pub name: String,
    /// Its version.
    pub version: u32,
    /// The event types it handles.
    pub event_types: Vec<String>,
    /// Hex SHA-256 of the wasm.
    pub sha256: String,
    /// False when the same code was already deployed (nothing changed).
    pub created: bool,
    /// Lifecycle state.
    pub state: String,
}

/// Validates, stores and registers a component. Returns the loaded component when it
/// is new (its agent must be started) and `None` when it was already deployed.
pub async fn deploy(
    runtime: &Runtime,
    store: &dyn Store,
    components_dir: &Path,
    wasm: Vec<u8>,
    auto_promote: bool,
    team: &str,
) -> Result<(Deployed, Option<Loaded>), DeployError> {
    let (loaded, wasm) = load(runtime, wasm, None).await?;
    register(store, components_dir, loaded, &wasm, auto_promote, team).await
}

/// Compiles (or loads from the artifact cache) and validates a component on a
/// blocking thread, its `describe` under `limits` (the deploying team's; none: the
/// daemon's); gives the bytes back for storing. Call it before taking any lock: a
/// guest's `describe` may run up to its whole CPU deadline.
pub async fn load(
    runtime: &Runtime,
    wasm: Vec<u8>,
    limits: Option<crate::runtime::Limits>,
) -> Result<(Loaded, Vec<u8>), DeployError> {
    let rt = runtime.clone();
    let limits = limits.unwrap_or_else(|| runtime.limits().clone());
    let deadline = limits.call_timeout();
    // Watched only while `describe` runs (compiling takes as long as it takes).
    let grace = crate::runtime::watchdog::GRACE;
    let loaded = crate::runtime::watchdog::run_watched("being deployed", deadline, grace, false, {
        move || rt.load_any_under(&wasm, limits).map(|l| (l, wasm))
    })
    .await?;
    Ok(loaded)
}

/// Registers a loaded component under its name and version (see [`deploy`]).
pub async fn register(
    store: &dyn Store,
    components_dir: &Path,
    loaded: Loaded,
    wasm: &[u8],
    auto_promote: bool,
    team: &str,
) -> Result<(Deployed, Option<Loaded>), DeployError> {
    let key = key_in(team, &loaded);
    let existing = store.component(&key).await?;
    if let Some(rec) = existing {
        if rec.sha256 != loaded.sha256() {
            return Err(DeployError::VersionTaken {
                key,
                existing: rec.sha256,
            });
        }
        let out = deployed(&rec, false);
        return Ok((out, None));
    }
    write_file(&wasm_path(components_dir, loaded.sha256()), wasm).await?;
    // The first version of a name serves at once; later ones rebuild beside it.
    let has_live = store
        .components_where(Components::Name(&key.name))
        .await?
        .iter()
        .any(|c| VersionState::parse(&c.state) == VersionState::Live);
    let state = if has_live {
        VersionState::CatchingUp
    } else {
        VersionState::Live
    };
    prepare(store, &key, &loaded).await?;
    start_at(store, &key, &loaded).await?;
    let rec = ComponentRecord {
        key,
        team: team.into(),
        sha256: loaded.sha256().to_owned(),
        event_types: loaded.event_types().to_vec(),
        state: state.as_str().into(),
        deployed_at: now_micros(),
        auto_promote,
        kind: loaded.kind().as_str().into(),
    };
    store.save_component(&rec).await?;
    tracing::info!(
        projection = %rec.key,
        kind = rec.kind,
        from_cache = loaded.from_cache(),
        ms = loaded.load_time().as_millis() as u64,
        "deployed"
    );
    Ok((deployed(&rec, true), Some(loaded)))
}

/// Puts fixed code under an existing version keeping its documents and progress (a
/// hotfix: for a fix that does not change what was already projected, after which
/// the version's dead letters can be replayed). The caller stops the version's agent
/// after this and starts it again with the new code.
pub async fn hotfix(
    store: &dyn Store,
    components_dir: &Path,
    loaded: &Loaded,
    wasm: &[u8],
    previous: &ComponentRecord,
) -> Result<Deployed, DeployError> {
    write_file(&wasm_path(components_dir, loaded.sha256()), wasm).await?;
    let rec = ComponentRecord {
        sha256: loaded.sha256().to_owned(),
        event_types: loaded.event_types().to_vec(),
        kind: loaded.kind().as_str().into(),
        ..previous.clone()
    };
    store.save_component(&rec).await?;
    tracing::info!(
        projection = %rec.key,
        previous = %previous.sha256,
        sha256 = %rec.sha256,
        "code replaced, documents and progress kept"
    );
    Ok(deployed(&rec, false))
}

/// Puts new code under an existing version (development hot reload): its documents
/// and progress are dropped and recreated empty, so it re-projects from the first
/// event. The caller stops the version's agent first and starts it again after.
pub async fn replace(
    store: &dyn Store,
    components_dir: &Path,
    loaded: &Loaded,
    wasm: &[u8],
    previous: &ComponentRecord,
) -> Result<Deployed, DeployError> {
    write_file(&wasm_path(components_dir, loaded.sha256()), wasm).await?;
    // Dropped before the new hash is recorded: a crash in between leaves the old
    // code with empty tables (a rebuild), never new code over old documents.
    store.drop_projection(&previous.key).await?;
    let rec = ComponentRecord {
        sha256: loaded.sha256().to_owned(),
        event_types: loaded.event_types().to_vec(),
        deployed_at: now_micros(),
        kind: loaded.kind().as_str().into(),
        ..previous.clone()
    };
    store.save_component(&rec).await?;
    prepare(store, &rec.key, loaded).await?;
    start_at(store, &rec.key, loaded).await?;
    tracing::info!(
        projection = %rec.key,
        previous = %previous.sha256,
        sha256 = %rec.sha256,
        "replaced in place"
    );
    Ok(deployed(&rec, true))
}

/// Empties a version's documents and progress so it runs again from its start; its
/// agent must be stopped.
pub async fn reset(
    store: &dyn Store,
    key: &ProjectionKey,
    loaded: &Loaded,
) -> Result<(), DeployError> {
    store.drop_projection(key).await?;
    prepare(store, key, loaded).await?;
    start_at(store, key, loaded).await?;
    Ok(())
}

/// The registry key of `team`'s loaded component: its name in the team's namespace.
pub fn key_in(team: &str, loaded: &Loaded) -> ProjectionKey {
    ProjectionKey {
        name: crate::teams::qualified(team, loaded.name()),
        version: loaded.version(),
    }
}

/// Creates what the version keeps in the store: a projection's document table and
/// progress, a subscription's progress only.
async fn prepare(
    store: &dyn Store,
    key: &ProjectionKey,
    loaded: &Loaded,
) -> Result<(), StoreError> {
    match loaded {
        Loaded::Projection(_) => store.prepare_projection(key).await,
        Loaded::Subscription(_) => store.prepare_subscription(key).await,
    }
}

/// Puts a new subscription's progress where it starts: the beginning, the head now,
/// a sequence, or the first event at a time. Projections always start at the
/// beginning.
async fn start_at(
    store: &dyn Store,
    key: &ProjectionKey,
    loaded: &Loaded,
) -> Result<(), StoreError> {
    let Loaded::Subscription(s) = loaded else {
        return Ok(());
    };
    let position = match s.descriptor.start {
        StartPosition::Beginning => return Ok(()),
        StartPosition::Now => store.head().await?,
        StartPosition::AfterSequence(seq) => seq,
        StartPosition::AtTime(t) => store.position_at_time(t).await?,
    };
    // Where it starts is not a replay: its effects high-water mark stays.
    store.rewind(key, position, false).await
}

/// Loads every registered component from the data directory, for a restart. A
/// component that cannot be loaded is reported and paused; the others still start.
pub async fn restore(
    runtime: &Runtime,
    store: &dyn Store,
    components_dir: &Path,
    teams: &crate::teams::Teams,
) -> Result<Vec<(ComponentRecord, Loaded)>, DeployError> {
    let mut out = Vec::new();
    for rec in store.components().await? {
        if VersionState::parse(&rec.state) == VersionState::Retired {
            continue;
        }
        let limits = teams.team(&rec.team).limits;
        match restore_one(runtime, store, components_dir, &rec, limits).await {
            Ok(loaded) => out.push((rec, loaded)),
            Err(e) => {
                tracing::error!(projection = %rec.key, "cannot restore: {e}");
                let msg = format!("cannot be loaded after a restart: {e}");
                store
                    .set_status(&rec.key, RunStatus::Paused, Some(&msg))
                    .await?;
            }
        }
    }
    Ok(out)
}

async fn restore_one(
    runtime: &Runtime,
    store: &dyn Store,
    components_dir: &Path,
    rec: &ComponentRecord,
    limits: Option<crate::runtime::Limits>,
) -> Result<Loaded, DeployError> {
    let path = wasm_path(components_dir, &rec.sha256);
    let wasm = tokio::fs::read(&path)
        .await
        .map_err(|source| DeployError::Io {
            path: path.clone(),
            source,
        })?;
    // `describe` again under the team's limits, as at deploy.
    let (loaded, _) = load(runtime, wasm, limits).await?;
    prepare(store, &rec.key, &loaded).await?;
    tracing::info!(projection = %rec.key, from_cache = loaded.from_cache(), "restored");
    Ok(loaded)
}

fn deployed(rec: &ComponentRecord, created: bool) -> Deployed {
    Deployed {
        name: rec.key.name.clone(),
        version: rec.key.version,
        event_types: rec.event_types.clone(),
        sha256: rec.sha256.clone(),
        created,
        state: rec.state.clone(),
    }
}

/// Saves a component's wasm under its hash in the data directory (atomically).
pub async fn save_wasm(
    components_dir: &Path,
    sha256: &str,
    wasm: &[u8],
) -> Result<(), DeployError> {
    write_file(&wasm_path(components_dir, sha256), wasm).await
}

/// Writes atomically: the registry never points at half a file.
async fn write_file(path: &Path, bytes: &[u8]) -> Result<(), DeployError> {
    let io = |source| DeployError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(io)?;
    }
    let tmp = path.with_extension("wasm.tmp");
    tokio::fs::write(&tmp, bytes).await.map_err(io)?;
    tokio::fs::rename(&tmp, path).await.map_err(io)
}
