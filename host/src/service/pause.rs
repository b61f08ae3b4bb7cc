//! The brake: an operator pauses any version (live included) and resumes it. A
//! paused version's agent is stopped and never started again (not by a restart of
//! the daemon, a rewind, a rebuild or a reload) until it is resumed; it then starts
//! from its stored progress. The pause is kept in the version's stored status
//! (`paused`, with the error "paused by operator" and fault `operator`), so it
//! survives a restart.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use super::lifecycle::find_unless;
use super::{Refract, ServiceError};
use crate::daemon::PauseError;
use crate::deploy::VersionState;
use crate::runtime::{Fault, Loaded};
use crate::store::{ComponentRecord, ProjectionKey, RunStatus, Store};

/// What a version paused by an operator shows as its error.
pub const PAUSED_BY_OPERATOR: &str = "paused by operator";

/// The versions an operator paused.
#[derive(Debug, Default)]
pub(super) struct OperatorPaused(Mutex<HashSet<ProjectionKey>>);

impl OperatorPaused {
    fn set(&self) -> std::sync::MutexGuard<'_, HashSet<ProjectionKey>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The stored error text of an operator's pause.
fn operator_error(key: &ProjectionKey) -> String {
    let e = PauseError {
        component: key.to_string(),
        event_sequence: None,
        message: PAUSED_BY_OPERATOR.into(),
        fault: Fault::Operator,
    };
    serde_json::to_string(&e).unwrap_or_else(|_| PAUSED_BY_OPERATOR.into())
}

/// Whether a stored error text is an operator's pause.
fn is_operator_error(text: &str) -> bool {
    serde_json::from_str::<PauseError>(text).is_ok_and(|e| e.fault == Fault::Operator)
}

impl Refract {
    /// Stops a version's agent and keeps it stopped, across restarts, until
    /// [`Refract::resume`]. Any state but retired; pausing twice is harmless.
    pub async fn pause(&self, name: &str, version: u32) -> Result<(), ServiceError> {
        let _one_at_a_time = self.locks.of_name(name).await;
        let target = find_unless(self.store.as_ref(), name, version, VersionState::Retired).await?;
        let key = target.key.clone();
        // Marked first: nothing that starts agents may start it again meanwhile.
        self.operator_paused.set().insert(key.clone());
        self.daemon.stop(&key).await;
        self.store
            .set_status(&key, RunStatus::Paused, Some(&operator_error(&key)))
            .await?;
        tracing::warn!(projection = %key, "{PAUSED_BY_OPERATOR}");
        Ok(())
    }

    /// Starts a paused version again from its stored progress (one paused by an
    /// operator, or by its own failures); a running version is restarted.
    pub async fn resume(&self, name: &str, version: u32) -> Result<(), ServiceError> {
        let _one_at_a_time = self.locks.of_name(name).await;
        let (target, loaded) = self.running(name, version).await?;
        self.operator_paused.set().remove(&target.key);
        // Here, from now on (on a store several nodes share: taken over first).
        self.daemon.stop(&target.key).await;
        self.store
            .set_status(&target.key, RunStatus::Running, None)
            .await?;
        self.run(target.key.clone(), &target.team, loaded).await;
        tracing::info!(projection = %target.key, "resumed by operator");
        Ok(())
    }

    /// Reads which of the restored versions an operator paused (before any starts);
    /// every other paused one resumes with the restart, and says so before the API
    /// answers: its status must not show the old pause until its agent gets going.
    pub(super) async fn load_operator_pauses(
        &self,
        restored: &[(ComponentRecord, Loaded)],
    ) -> Result<(), ServiceError> {
        for (rec, _) in restored {
            self.read_pause(&rec.key).await?;
        }
        Ok(())
    }

    /// Reads `key`'s stored pause as a restart does: an operator's is kept (the
    /// version will not start), any other resumes. Also when a node takes a version
    /// over from another: its pause may have been made there.
    pub(super) async fn read_pause(&self, key: &ProjectionKey) -> Result<(), ServiceError> {
        let p = self.store.progress(key).await?;
        if p.status != RunStatus::Paused {
            self.operator_paused.set().remove(key);
            return Ok(());
        }
        if p.error.as_deref().is_some_and(is_operator_error) {
            self.operator_paused.set().insert(key.clone());
        } else {
            self.operator_paused.set().remove(key);
            tracing::info!(projection = %key, "resuming (was paused) as it starts here");
            self.store.set_status(key, RunStatus::Running, None).await?;
        }
        Ok(())
    }

    /// Reads whether an operator paused `key` from its stored status: on a store
    /// several nodes share, the pause (or the resume) may have been made through
    /// another node.
    pub(super) async fn sync_operator_pause(&self, key: &ProjectionKey) {
        match self.store.progress(key).await {
            Ok(p) => {
                let paused = p.status == RunStatus::Paused
                    && p.error.as_deref().is_some_and(is_operator_error);
                if paused {
                    self.operator_paused.set().insert(key.clone());
                } else {
                    self.operator_paused.set().remove(key);
                }
            }
            Err(e) => tracing::warn!(projection = %key, "reading its pause: {e}"),
        }
    }

    /// Whether `key` stays stopped (an operator paused it). Its stored status is
    /// written again, since a rebuild or rewind that meant to restart it may have
    /// reset it.
    pub(super) fn keep_paused(&self, key: &ProjectionKey) -> bool {
        if !self.operator_paused.set().contains(key) {
            return false;
        }
        let store: Arc<dyn Store> = self.store.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let text = operator_error(&key);
            if let Err(e) = store.set_status(&key, RunStatus::Paused, Some(&text)).await {
                tracing::warn!(projection = %key, "keeping the operator's pause: {e}");
            }
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_operators_pause_reads_as_one() {
        let key = ProjectionKey {
            name: "x".into(),
            version: 2,
        };
        assert!(is_operator_error(&operator_error(&key)));
        let guest = PauseError {
            component: "x@v2".into(),
            event_sequence: Some(3),
            message: PAUSED_BY_OPERATOR.into(),
            fault: Fault::Guest,
        };
        let guest = serde_json::to_string(&guest).unwrap_or_default();
        assert!(
            !is_operator_error(&guest),
            "a guest's text saying so is not"
        );
        assert!(!is_operator_error(PAUSED_BY_OPERATOR));
    }
}
