//! Code nobody runs is removed from the data directory: the stored wasm and the
//! compiled artifacts of a hash whose last version was retired, or whose upload was
//! refused, so disk use follows what is deployed, not what was ever sent.

use sha2::{Digest, Sha256};

use super::Refract;
use crate::deploy::{self, VersionState};
use crate::store::Components;

impl Refract {
    /// Removes the wasm and the compiled artifacts of `sha256` unless a version that
    /// is not retired uses it. Failures are logged: the code is only disk, not state.
    pub(super) async fn remove_unused_code(&self, sha256: &str) {
        // No other team registers this code between the check and the removal.
        let _code = self.locks.code().await;
        let used = match self.store.components_where(Components::Code(sha256)).await {
            Ok(comps) => comps
                .iter()
                .any(|c| VersionState::parse(&c.state) != VersionState::Retired),
            Err(e) => {
                tracing::warn!(sha256, "keeping the code: cannot read the registry: {e}");
                return;
            }
        };
        if used || self.candidate_runs(sha256) {
            return;
        }
        let path = deploy::wasm_path(&self.components_dir, sha256);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => tracing::info!(sha256, "removed unused wasm"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %path.display(), "cannot remove unused wasm: {e}"),
        }
        let runtime = self.runtime.clone();
        let sha = sha256.to_owned();
        let _ = tokio::task::spawn_blocking(move || runtime.remove_artifacts(&sha)).await;
    }
}

/// The hex SHA-256 of an upload (the name its wasm and artifacts are kept under).
pub(super) fn sha256_hex(wasm: &[u8]) -> String {
    hex::encode(Sha256::digest(wasm))
}
