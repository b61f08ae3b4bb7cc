//! An agent's commits: one in flight at a time, each running while the next page is
//! projected, behind a gate the daemon can wait on.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio::task::JoinHandle;

use crate::store::StoreError;

/// Held by every commit task for as long as it runs. It outlives the agent that
/// spawned the commit, so whoever stops or replaces an agent can wait for the last
/// write of it to land (or fail) before touching the version's tables.
#[derive(Clone, Default)]
pub(crate) struct CommitGate(Arc<Mutex<()>>);

impl CommitGate {
    /// Waits until no commit of this version is running.
    pub async fn wait(&self) {
        drop(self.0.lock().await);
    }

    async fn enter(&self) -> OwnedMutexGuard<()> {
        match self.0.clone().try_lock_owned() {
            Ok(guard) => guard,
            Err(_) => self.0.clone().lock_owned().await,
        }
    }
}

/// The commit in flight of one agent.
pub(crate) struct Commits {
    task: Option<JoinHandle<Result<(), StoreError>>>,
    gate: CommitGate,
}

impl Commits {
    /// No commit in flight yet; `gate` is the version's.
    pub fn new(gate: CommitGate) -> Self {
        Self { task: None, gate }
    }

    /// Whether a commit is in flight.
    pub fn in_flight(&self) -> bool {
        self.task.is_some()
    }

    /// Starts a commit. The caller has settled the previous one, so the gate is
    /// free unless a replaced agent's last commit still runs (then this waits).
    pub async fn spawn(
        &mut self,
        commit: impl Future<Output = Result<(), StoreError>> + Send + 'static,
    ) {
        debug_assert!(self.task.is_none(), "settle before the next commit");
        let guard = self.gate.enter().await;
        self.task = Some(tokio::spawn(async move {
            let result = commit.await;
            drop(guard);
            result
        }));
    }

    /// Waits for the commit in flight, if any, and returns its result.
    pub async fn settle(&mut self) -> Result<(), StoreError> {
        let Some(task) = self.task.as_mut() else {
            return Ok(());
        };
        // Not taken out before it ends: an agent stopped here leaves the handle in
        // place, and the gate still tells the daemon when the write is done.
        let result = task
            .await
            .unwrap_or_else(|e| Err(StoreError::Invalid(format!("commit task failed: {e}"))));
        self.task = None;
        result
    }
}
