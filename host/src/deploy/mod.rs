//! Deploying components and deciding their lifecycle: the wasm files
//! (`files`), the registry records (`registry`), where a new version starts
//! (`start`), which versions run after a restart (`restore`), the lifecycle states
//! and every change of them (`lifecycle`, `states`, `promote`), and what a
//! subscription agent is told of its name's other versions (`hold`). Agents get
//! these decisions as plain values; they never read lifecycle states.

mod files;
mod hold;
mod lifecycle;
mod locks;
mod promote;
mod registry;
mod restore;
mod start;
mod states;

pub use files::{save_wasm, wasm_path};
pub use hold::Hold;
pub use lifecycle::{LifecycleError, VersionState};
pub use locks::DeployLocks;
pub use registry::{NewCode, put_code, register, reset};
pub use states::Lifecycle;

use std::path::{Path, PathBuf};

use crate::runtime::{Loaded, Runtime, RuntimeError};
use crate::store::{ComponentRecord, ProjectionKey, Store, StoreError};

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

/// The registry key of `team`'s loaded component: its name in the team's namespace.
pub fn key_in(team: &str, loaded: &Loaded) -> ProjectionKey {
    ProjectionKey {
        name: crate::teams::qualified(team, loaded.name()),
        version: loaded.version(),
    }
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
