//! Turns at the store, per team. Every agent reads pages and commits them through
//! the store's few connections (one writer, a handful of readers), which serve
//! whoever asked first. Without turns, a team with 2,000 versions woken by one
//! append puts 2,000 reads and 2,000 commits in line ahead of another team's single
//! page. With them, a team's agents queue among themselves for the team's own few
//! turns, so the store's queues hold at most a few requests per busy team and any
//! team's page waits for a handful of others, not for thousands.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::teams::PerTeam;

/// Page reads one team's agents may have at the store at once (the store has four
/// reader connections, so two teams at their limit fill it).
pub const READS_PER_TEAM: usize = 2;

/// Commits one team's agents may have at the store at once (there is one writer:
/// more would only lengthen its queue).
pub const WRITES_PER_TEAM: usize = 2;

/// One team's turns at the store. Cheap to clone.
#[derive(Clone)]
pub(crate) struct StoreTurns {
    reads: Arc<Semaphore>,
    writes: Arc<Semaphore>,
}

/// A turn held for as long as one read or commit runs.
pub(crate) struct Turn(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

impl StoreTurns {
    fn new() -> Self {
        Self {
            reads: Arc::new(Semaphore::new(READS_PER_TEAM)),
            writes: Arc::new(Semaphore::new(WRITES_PER_TEAM)),
        }
    }

    /// Waits for one of the team's read turns.
    pub async fn read(&self) -> Turn {
        // Never closed; a closed one would only mean no limit.
        Turn(self.reads.clone().acquire_owned().await.ok())
    }

    /// Waits for one of the team's read turns, or answers `None` once `stop` is set:
    /// an agent told to stop never waits its turn behind thousands of others.
    pub async fn read_unless_stopped(&self, stop: &watch::Receiver<bool>) -> Option<Turn> {
        let mut stop = stop.clone();
        let stopped = async move {
            // A dropped sender never stops anyone: wait for a turn as usual.
            if stop.wait_for(|s| *s).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            biased;
            () = stopped => None,
            turn = self.read() => Some(turn),
        }
    }

    /// Waits for one of the team's commit turns.
    pub async fn write(&self) -> Turn {
        Turn(self.writes.clone().acquire_owned().await.ok())
    }

    /// Read turns free now.
    #[cfg(test)]
    pub fn reads_free(&self) -> usize {
        self.reads.available_permits()
    }
}

/// Every team's turns, made on first use.
#[derive(Default)]
pub(crate) struct TeamTurns(PerTeam<StoreTurns>);

impl TeamTurns {
    /// The turns of `team`.
    pub fn of(&self, team: &str) -> StoreTurns {
        self.0.get(team, StoreTurns::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_team_at_its_read_turns_waits_while_another_team_reads() {
        let turns = TeamTurns::default();
        let bulk = turns.of("bulk");
        let held: Vec<Turn> = futures_held(&bulk).await;
        assert_eq!(bulk.reads_free(), 0);
        // The bulk team's next read waits for one of its own turns...
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), bulk.read());
        assert!(waiting.await.is_err(), "a third read of one team waits");
        // ...while another team reads at once.
        let other = turns.of("good");
        let got = tokio::time::timeout(std::time::Duration::from_millis(50), other.read());
        assert!(got.await.is_ok(), "another team's read does not wait");
        drop(held);
        assert_eq!(turns.of("bulk").reads_free(), READS_PER_TEAM);
    }

    #[tokio::test]
    async fn an_agent_told_to_stop_leaves_the_queue_for_a_turn() {
        let turns = TeamTurns::default();
        let bulk = turns.of("bulk");
        let held: Vec<Turn> = futures_held(&bulk).await;
        let (stop, stopped) = watch::channel(false);
        let queued = tokio::spawn({
            let bulk = bulk.clone();
            async move { bulk.read_unless_stopped(&stopped).await.is_some() }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!queued.is_finished(), "it waits its turn");
        stop.send_replace(true);
        let got = tokio::time::timeout(std::time::Duration::from_secs(1), queued).await;
        assert!(!got.expect("leaves at once").expect("task"), "with no turn");
        // Not stopped, it gets one as soon as one is free.
        let (_keep, running) = watch::channel(false);
        drop(held);
        assert!(bulk.read_unless_stopped(&running).await.is_some());
    }

    async fn futures_held(t: &StoreTurns) -> Vec<Turn> {
        let mut held = Vec::new();
        for _ in 0..READS_PER_TEAM {
            held.push(t.read().await);
        }
        held
    }
}
