//! A projection version's dead letters: the events it gave up on (policy
//! `dead-letter`), applied again after a fixed build is put in place (a hotfix).

use super::{Refract, ServiceError};
use crate::daemon::DaemonError;
use crate::deploy::{self, Deployed};
use crate::store::subscription::DeadLetter;

impl Refract {
    /// The events a version gave up on, oldest first.
    pub async fn dead_letters(
        &self,
        name: &str,
        version: u32,
    ) -> Result<Vec<DeadLetter>, ServiceError> {
        let (target, _) = self.running(name, version).await?;
        Ok(self.store.dead_letters(&target.key).await?)
    }

    /// Applies a projection version's dead letters again through its running code,
    /// in sequence order after the events it has already projected; those that
    /// apply are removed in the same transaction as their writes. Answers how many
    /// were applied.
    pub async fn replay_dead_letters(
        &self,
        name: &str,
        version: u32,
    ) -> Result<crate::daemon::Replayed, ServiceError> {
        let (target, _) = self.running(name, version).await?;
        if target.kind == "subscription" {
            return Err(DaemonError::Unsupported(format!(
                "{name} version {version} is a subscription: rewind it to handle its \
                 dead letters again"
            ))
            .into());
        }
        let done = self.daemon.replay_dead_letters(&target.key).await?;
        tracing::info!(projection = %target.key, ?done, "dead letters replayed");
        Ok(done)
    }
}

impl Refract {
    /// Replaces the code of `team`'s deployed version of the component's name and
    /// version, keeping its documents and progress (a hotfix); the version's agent
    /// goes on from where it was with the new code.
    pub async fn hotfix(&self, wasm: Vec<u8>, team: &str) -> Result<Deployed, ServiceError> {
        let _one_at_a_time = self.deploy_lock.lock().await;
        let (loaded, wasm) = deploy::load(&self.runtime, wasm).await?;
        let key = deploy::key_in(team, &loaded);
        let (rec, _) = self.running(&key.name, key.version).await?;
        if rec.kind != loaded.kind().as_str() {
            return Err(DaemonError::Unsupported(format!(
                "{} version {} is a {}; the upload is a {}",
                key.name,
                key.version,
                rec.kind,
                loaded.kind().as_str()
            ))
            .into());
        }
        if rec.sha256 == loaded.sha256() {
            return Err(DaemonError::Unsupported(format!(
                "{} version {} already runs this code",
                key.name, key.version
            ))
            .into());
        }
        // A candidate still building runs older code: its swap would undo the fix.
        self.drop_candidate(&key).await?;
        self.daemon.stop(&key).await;
        let replaced = deploy::hotfix(
            self.store.as_ref(),
            &self.components_dir,
            &loaded,
            &wasm,
            &rec,
        )
        .await;
        match replaced {
            Ok(out) => {
                self.run(key, &rec.team, loaded);
                Ok(out)
            }
            Err(e) => {
                // Keep running the code that ran before.
                let previous = self.loaded_components().get(&key).cloned();
                if let Some(previous) = previous {
                    self.run(key, &rec.team, previous);
                }
                Err(e.into())
            }
        }
    }
}
