//! Recording a version in the registry: a new one, new code under an existing one
//! (kept documents or rebuilt ones), and a version emptied to run again.

use std::path::Path;

use super::files::save_wasm;
use super::start::{prepare, start_at};
use super::{DeployError, Deployed, VersionState, deployed, key_in};
use crate::runtime::Loaded;
use crate::store::{ComponentRecord, Components, ProjectionKey, Store, now_micros};

/// Registers a loaded component under its name and version (see [`super::deploy`]).
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
    save_wasm(store, components_dir, loaded.sha256(), wasm).await?;
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

/// What new code put under an existing version does with what it projected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewCode {
    /// A hotfix: documents and progress are kept (for a fix that does not change
    /// what was already projected, after which the version's dead letters can be
    /// replayed).
    KeepDocuments,
    /// Development hot reload: documents and progress are dropped and recreated
    /// empty, so it re-projects from its start.
    FromStart,
}

/// Puts new code under an existing version, keeping or rebuilding what it
/// projected (`how`). The caller stops the version's agent first and starts it
/// again with the new code after.
pub async fn put_code(
    store: &dyn Store,
    components_dir: &Path,
    loaded: &Loaded,
    wasm: &[u8],
    previous: &ComponentRecord,
    how: NewCode,
) -> Result<Deployed, DeployError> {
    save_wasm(store, components_dir, loaded.sha256(), wasm).await?;
    let mut rec = ComponentRecord {
        sha256: loaded.sha256().to_owned(),
        event_types: loaded.event_types().to_vec(),
        kind: loaded.kind().as_str().into(),
        ..previous.clone()
    };
    let (created, done) = match how {
        NewCode::KeepDocuments => {
            store.save_component(&rec).await?;
            (false, "code replaced, documents and progress kept")
        }
        NewCode::FromStart => {
            rec.deployed_at = now_micros();
            from_start(store, &previous.key, loaded, Some(&rec)).await?;
            (true, "replaced in place")
        }
    };
    tracing::info!(
        projection = %rec.key,
        previous = %previous.sha256,
        sha256 = %rec.sha256,
        "{done}"
    );
    Ok(deployed(&rec, created))
}

/// Empties a version's documents and progress so it runs again from its start; its
/// agent must be stopped.
pub async fn reset(
    store: &dyn Store,
    key: &ProjectionKey,
    loaded: &Loaded,
) -> Result<(), DeployError> {
    from_start(store, key, loaded, None).await
}

/// Drops a version's documents and progress and prepares them again at `loaded`'s
/// start, recording `new` (its new code) in between: dropped before the new hash is
/// recorded, a crash in between leaves the old code with empty tables (a rebuild),
/// never new code over old documents.
async fn from_start(
    store: &dyn Store,
    key: &ProjectionKey,
    loaded: &Loaded,
    new: Option<&ComponentRecord>,
) -> Result<(), DeployError> {
    store.drop_projection(key).await?;
    if let Some(rec) = new {
        store.save_component(rec).await?;
    }
    prepare(store, key, loaded).await?;
    start_at(store, key, loaded).await?;
    Ok(())
}
