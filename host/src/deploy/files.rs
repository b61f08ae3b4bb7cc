//! The wasm files of deployed components: kept in the data directory under their
//! hash, written atomically so the registry never points at half a file; on a
//! store several nodes share, also in the store, so every node can load them.

use std::path::{Path, PathBuf};

use super::DeployError;
use crate::store::Store;

/// Where the wasm of a component with this hash is kept.
pub fn wasm_path(components_dir: &Path, sha256: &str) -> PathBuf {
    components_dir.join(format!("{sha256}.wasm"))
}

/// Saves a component's wasm under its hash in the data directory (atomically) and
/// in a shared store (before the registry names it, so no node looks for it in
/// vain).
pub async fn save_wasm(
    store: &dyn Store,
    components_dir: &Path,
    sha256: &str,
    wasm: &[u8],
) -> Result<(), DeployError> {
    if let Some(cluster) = store.cluster() {
        cluster.put_code(sha256, wasm).await?;
    }
    write_file(&wasm_path(components_dir, sha256), wasm).await
}

/// The wasm saved under this hash: from the data directory, else from a shared
/// store (deployed through another node; kept here from then on).
pub(super) async fn read_wasm(
    store: &dyn Store,
    components_dir: &Path,
    sha256: &str,
) -> Result<Vec<u8>, DeployError> {
    let path = wasm_path(components_dir, sha256);
    match tokio::fs::read(&path).await {
        Ok(wasm) => Ok(wasm),
        Err(source) => {
            let shared = match store.cluster() {
                Some(cluster) => cluster.code(sha256).await?,
                None => None,
            };
            let Some(wasm) = shared else {
                return Err(DeployError::Io { path, source });
            };
            write_file(&path, &wasm).await?;
            Ok(wasm)
        }
    }
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
