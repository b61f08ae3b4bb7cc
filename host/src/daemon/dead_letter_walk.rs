//! A version's dead letters walked beside a scan of events in sequence order, a
//! page of letters at a time: their events were never applied, so a rebuild of
//! one stream's documents leaves them out too (a replay applies them).

use super::agent::Agent;
use super::rebuild_stream::RebuildError;
use crate::runtime::Event;
use crate::store::Position;

/// Letters read per query.
const LETTERS_PER_READ: usize = 1_000;

/// The letters after the last one looked at, read ahead a page at a time.
#[derive(Default)]
pub(super) struct Letters {
    /// Letters read ahead, ascending.
    next: std::collections::VecDeque<Position>,
    /// The last letter read (the next page of letters starts after it).
    after: Position,
    /// No letter after `after`.
    done: bool,
    /// The last sequence asked about: one below it starts the walk again.
    asked: Position,
}

impl Letters {
    /// `page` without the events that are dead letters (ascending pages are walked
    /// in one pass; an event before the last one asked about starts over).
    pub(super) async fn drop_from(
        &mut self,
        agent: &Agent,
        page: Vec<Event>,
    ) -> Result<Vec<Event>, RebuildError> {
        let mut kept = Vec::with_capacity(page.len());
        for e in page {
            if !self.is_letter(agent, e.sequence).await? {
                kept.push(e);
            }
        }
        Ok(kept)
    }

    async fn is_letter(&mut self, agent: &Agent, sequence: Position) -> Result<bool, RebuildError> {
        if sequence < self.asked {
            *self = Self::default();
        }
        self.asked = sequence;
        loop {
            while self.next.front().is_some_and(|l| *l < sequence) {
                self.next.pop_front();
            }
            if let Some(l) = self.next.front() {
                return Ok(*l == sequence);
            }
            if self.done {
                return Ok(false);
            }
            // From just before this event: letters before it are not needed.
            let from = self.after.max(sequence - 1);
            let turn = agent.read_turn().await?;
            let page = agent
                .store
                .dead_letter_page(&agent.key, from, LETTERS_PER_READ)
                .await?;
            drop(turn);
            match page.last() {
                Some(last) => self.after = last.sequence,
                // None after `from`: none up to the end of this walk either.
                None => self.done = true,
            }
            self.next.extend(page.iter().map(|d| d.sequence));
        }
    }
}
