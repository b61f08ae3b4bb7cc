//! A running agent as the daemon sees it, and how one ends: told to stop, waited
//! for, aborted past a grace period, and in every case not over until its task's
//! future is gone and its last commit has landed or failed.

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::agent::Control;
use super::commits::CommitGate;

/// How long an agent told to stop may take to finish its page before it is
/// aborted (a guest call ends by its CPU deadline long before).
pub const STOP_GRACE: Duration = Duration::from_secs(15);

/// One version's agent task.
pub(super) struct Running {
    pub task: JoinHandle<()>,
    /// Tells this agent to stop after its page.
    pub stop: watch::Sender<bool>,
    /// Free when no commit of the version runs.
    pub gate: CommitGate,
    /// Requests for a projection agent.
    pub control: Option<mpsc::Sender<Control>>,
    /// Held by the futures of this version's agent tasks (this one and the one it
    /// replaced): gone once none of them can run again, even after an abort.
    life: Weak<()>,
    /// How long it may take to stop before it is aborted.
    grace: Duration,
}

/// Aborts a task when dropped: a replacing agent aborted while it waits for the
/// one it replaces takes that one down with it instead of detaching it.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Running {
    /// Spawns an agent in place of `old` (if any): the old one is told to stop, and
    /// the new one starts only when the old one's task and last commit have ended,
    /// so two agents of one version never write at once.
    pub fn spawn<F>(
        old: Option<Running>,
        stop: watch::Sender<bool>,
        control: Option<mpsc::Sender<Control>>,
        grace: Duration,
        agent: impl FnOnce(CommitGate) -> F,
    ) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let gate = old.as_ref().map(|o| o.gate.clone()).unwrap_or_default();
        let life = old
            .as_ref()
            .and_then(|o| o.life.upgrade())
            .unwrap_or_else(|| Arc::new(()));
        let weak = Arc::downgrade(&life);
        let run = agent(gate.clone());
        let wait = gate.clone();
        let task = tokio::spawn(async move {
            if let Some(old) = old {
                old.stop.send_replace(true);
                let mut old_task = AbortOnDrop(old.task);
                finish(&mut old_task.0, old.grace).await;
                drop(old_task);
                // The agents it replaced (aborted ones included) must be gone, not
                // just told: only this task's own token may be left.
                wait_gone(&life, 1, old.grace).await;
            }
            let _life = life;
            wait.wait().await;
            run.await;
        });
        Self {
            task,
            stop,
            gate,
            control,
            life: weak,
            grace,
        }
    }

    /// Waits for an agent told to stop: its task (aborted past the grace period),
    /// every future of the version's agents, then its last commit.
    pub async fn end(mut self) {
        finish(&mut self.task, self.grace).await;
        // An aborted future is dropped at its next await, not at once: until then
        // it could still start a commit.
        if let Some(life) = self.life.upgrade() {
            wait_gone(&life, 1, self.grace).await;
        }
        self.gate.wait().await;
    }
}

/// Waits (up to `grace`) until at most `mine` holders of the version's life token
/// are left: the futures of its other agents have been dropped.
async fn wait_gone(life: &Arc<()>, mine: usize, grace: Duration) {
    let mut waited = Duration::ZERO;
    while Arc::strong_count(life) > mine && waited < grace {
        tokio::time::sleep(Duration::from_millis(2)).await;
        waited += Duration::from_millis(2);
    }
}

/// Waits for a task told to stop, aborting it if it does not end in time.
async fn finish(task: &mut JoinHandle<()>, grace: Duration) {
    if tokio::time::timeout(grace, &mut *task).await.is_err() {
        tracing::warn!("an agent did not stop within {grace:?}; aborting it");
        task.abort();
        let _ = task.await;
    }
}
