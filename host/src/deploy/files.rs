//! The wasm files of deployed components: kept in the data directory under their
//! hash, written atomically so the registry never points at half a file.

use std::path::{Path, PathBuf};

use super::DeployError;

/// Where the wasm of a component with this hash is kept.
pub fn wasm_path(components_dir: &Path, sha256: &str) -> PathBuf {
    components_dir.join(format!("{sha256}.wasm"))
}

/// Saves a component's wasm under its hash in the data directory (atomically).
pub async fn save_wasm(
    components_dir: &Path,
    sha256: &str,
    wasm: &[u8],
) -> Result<(), DeployError> {
    write_file(&wasm_path(components_dir, sha256), wasm).await
}

/// The wasm saved under this hash.
pub(super) async fn read_wasm(components_dir: &Path, sha256: &str) -> Result<Vec<u8>, DeployError> {
    let path = wasm_path(components_dir, sha256);
    tokio::fs::read(&path)
        .await
        .map_err(|source| DeployError::Io { path, source })
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
