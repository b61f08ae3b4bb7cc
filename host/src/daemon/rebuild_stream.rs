//! Rebuilding the documents one stream's events touch (a repair after a fixed
//! build), in the agent's own turn: no page of the version commits meanwhile.
//!
//! The stream's events (of the version's types, up to its position) are sliced to
//! find the documents they touch. Those documents are folded again from nothing,
//! from every event that touches them: for a per-stream projection that is the
//! stream itself; for one whose documents span streams, every event up to the
//! position is read and sliced, and only the slices of those documents applied
//! (documents fed by other streams stay whole). Everything is written in one
//! commit at the version's position, or nothing if any call fails.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::agent::{Agent, PageError};
use crate::runtime::{DocChange, DocInput, Event};
use crate::store::{DocWrite, PageCommit, Position, ReadBudget, StreamId};

/// The most documents one stream's rebuild may touch (their states are held until
/// the one commit); more is refused before anything is applied.
pub const MAX_REBUILT_DOCS: usize = 10_000;

/// What a rebuild of one stream's documents did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StreamRebuilt {
    /// The stream's events the version handles, up to its position.
    pub stream_events: u64,
    /// The documents they touch, folded again (written or deleted).
    pub documents: u64,
    /// Events applied to those documents (the stream's and other streams').
    pub events_applied: u64,
    /// Events read to find them.
    pub events_read: u64,
    /// The position the documents were rebuilt up to (the version's).
    pub position: Position,
}

impl Agent {
    /// Rebuilds the documents `stream`'s events touch; see the module doc.
    pub(super) async fn rebuild_stream(
        &mut self,
        stream: &StreamId,
    ) -> Result<StreamRebuilt, String> {
        self.settle()
            .await
            .map_err(|e| format!("the last commit failed ({e}); try again"))?;
        let Some(position) = self.position else {
            return Err("the version is recovering from a failed commit; try again".into());
        };
        let mut out = StreamRebuilt {
            position,
            ..StreamRebuilt::default()
        };
        if !self.streams.matches(stream.as_str()) {
            return Err(format!("the version's team may not read stream {stream}"));
        }
        let per_stream = self
            .projector
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .per_stream();
        // The documents the stream's events touch.
        let mut targets: HashSet<String> = HashSet::new();
        let mut letters = Letters::default();
        let mut from = 1;
        while let Some(page) = self.stream_page(stream, &mut from, position).await? {
            let page = letters.drop_from(self, page).await?;
            out.stream_events += page.len() as u64;
            if page.is_empty() {
                continue;
            }
            let page = Arc::new(page);
            self.enter().await.map_err(|e| e.to_string())?;
            let slices = self.call(&page, |p, page| p.slice(page)).await;
            self.leave().await;
            let slices = slices.map_err(|e| e.to_string())?;
            targets.extend(slices.into_iter().map(|s| s.doc_id));
            if targets.len() > MAX_REBUILT_DOCS {
                return Err(format!(
                    "stream {stream}'s events touch more than {MAX_REBUILT_DOCS} documents: \
                     rebuild the whole version instead"
                ));
            }
        }
        if targets.is_empty() {
            return Ok(out);
        }
        let mut states: HashMap<String, Option<String>> =
            targets.iter().map(|id| (id.clone(), None)).collect();
        let mut held = 0usize;
        let (mut from, mut after) = (1, 0);
        let mut letters = Letters::default();
        loop {
            let page = match per_stream {
                true => self.stream_page(stream, &mut from, position).await?,
                false => self.all_page(&mut after, position).await?,
            };
            let Some(page) = page else { break };
            out.events_read += page.len() as u64;
            let page = Arc::new(letters.drop_from(self, page).await?);
            self.enter().await.map_err(|e| e.to_string())?;
            let applied = self.fold_page(&page, &targets, &states).await;
            self.leave().await;
            let Some((ids, changes, events)) = applied? else {
                continue;
            };
            out.events_applied += events;
            for (id, change) in ids.into_iter().zip(changes) {
                let state = states.entry(id).or_default();
                let before = state.as_ref().map_or(0, String::len);
                match change {
                    DocChange::Put(body) => *state = Some(body),
                    DocChange::Delete => *state = None,
                    DocChange::Keep => {}
                }
                held = (held + state.as_ref().map_or(0, String::len)).saturating_sub(before);
            }
            if held > self.budget.doc_bytes {
                return Err(format!(
                    "the documents stream {stream}'s events touch grow past {} bytes together \
                     (max_result_bytes): rebuild the whole version instead",
                    self.budget.doc_bytes
                ));
            }
        }
        out.documents = states.len() as u64;
        let writes = states
            .into_iter()
            .map(|(id, state)| match state {
                Some(body) => DocWrite::Put { id, body },
                None => DocWrite::Delete { id },
            })
            .collect();
        // The store is the truth for the rebuilt documents: the cache reads them again.
        self.cache.clear();
        let commit = PageCommit {
            writes,
            position,
            ..PageCommit::default()
        };
        let committed = async {
            self.commit(commit).await?;
            self.settle().await.map_err(PageError::Store)
        };
        if let Err(e) = committed.await {
            return Err(format!("committing the rebuilt documents failed: {e}"));
        }
        Ok(out)
    }

    /// The stream's next events (from stream version `from`) the version handles,
    /// up to `position`; `None` when there are no more.
    async fn stream_page(
        &self,
        stream: &StreamId,
        from: &mut u64,
        position: Position,
    ) -> Result<Option<Vec<Event>>, String> {
        loop {
            let (_, events) = self
                .store
                .read_stream_page(stream, *from, self.budget.events)
                .await
                .map_err(|e| e.to_string())?;
            let Some(last) = events.last() else {
                return Ok(None);
            };
            *from = last.stream_version + 1;
            let past = last.sequence > position;
            let page: Vec<Event> = events
                .into_iter()
                .filter(|e| e.sequence <= position && self.event_types.contains(&e.event_type))
                .collect();
            if !page.is_empty() {
                return Ok(Some(page));
            }
            if past {
                return Ok(None);
            }
        }
    }

    /// The next page of every readable event the version handles, after `after`
    /// up to `position`; `None` when there are no more.
    async fn all_page(
        &self,
        after: &mut Position,
        position: Position,
    ) -> Result<Option<Vec<Event>>, String> {
        while *after < position {
            let budget = ReadBudget {
                events: self.budget.events,
                bytes: self.budget.bytes,
            };
            let page = self
                .store
                .read_page(*after, Some(&self.event_types), budget)
                .await
                .map_err(|e| e.to_string())?;
            let page = super::shared::readable(page, &self.streams);
            let scanned = page.scanned_to.min(position);
            if scanned <= *after {
                return Ok(None);
            }
            *after = scanned;
            let events: Vec<Event> = page
                .events
                .into_iter()
                .filter(|e| e.sequence <= position)
                .collect();
            if !events.is_empty() {
                return Ok(Some(events));
            }
        }
        Ok(None)
    }

    /// Slices the page and applies the slices of `targets` to their `states`:
    /// their ids, changes and how many events they took, or `None` if the page
    /// touches none of them. Called between [`Agent::enter`] and [`Agent::leave`].
    async fn fold_page(
        &mut self,
        page: &Arc<Vec<Event>>,
        targets: &HashSet<String>,
        states: &HashMap<String, Option<String>>,
    ) -> Result<Option<(Vec<String>, Vec<DocChange>, u64)>, String> {
        let slices = self
            .call(page, |p, page| p.slice(page))
            .await
            .map_err(|e| e.to_string())?;
        let inputs: Vec<DocInput> = slices
            .into_iter()
            .filter(|s| targets.contains(&s.doc_id))
            .map(|s| DocInput {
                state: states.get(&s.doc_id).cloned().flatten(),
                id: s.doc_id,
                events: s.events,
            })
            .collect();
        if inputs.is_empty() {
            return Ok(None);
        }
        let events: HashSet<u32> = inputs
            .iter()
            .flat_map(|d| d.events.iter().copied())
            .collect();
        let ids: Vec<String> = inputs.iter().map(|d| d.id.clone()).collect();
        let changes = self
            .call(page, move |p, page| p.apply(page, inputs))
            .await
            .map_err(|e| e.to_string())?;
        Ok(Some((ids, changes, events.len() as u64)))
    }
}

/// The version's dead letters, walked beside a scan in sequence order: their events
/// were never applied, so a rebuild leaves them out too (a replay applies them).
#[derive(Default)]
struct Letters {
    /// Letters read ahead, ascending.
    next: std::collections::VecDeque<Position>,
    /// The last letter read (the next page of letters starts after it).
    after: Position,
    /// No more letters after `after`.
    done: bool,
}

impl Letters {
    /// `page` (ascending) without the events that are dead letters.
    async fn drop_from(&mut self, agent: &Agent, page: Vec<Event>) -> Result<Vec<Event>, String> {
        let mut kept = Vec::with_capacity(page.len());
        for e in page {
            if !self.is_letter(agent, e.sequence).await? {
                kept.push(e);
            }
        }
        Ok(kept)
    }

    async fn is_letter(&mut self, agent: &Agent, sequence: Position) -> Result<bool, String> {
        loop {
            while self.next.front().is_some_and(|l| *l < sequence) {
                self.next.pop_front();
            }
            if let Some(l) = self.next.front() {
                return Ok(*l == sequence);
            }
            if self.done && self.after >= sequence {
                return Ok(false);
            }
            // From just before this event: letters before it are not needed.
            let from = self.after.max(sequence - 1);
            let page = agent
                .store
                .dead_letter_page(&agent.key, from, 1_000)
                .await
                .map_err(|e| e.to_string())?;
            match page.last() {
                Some(last) => self.after = last.sequence,
                None => {
                    // None after `from`: none up to the end of this scan either.
                    self.done = true;
                    self.after = Position::MAX;
                }
            }
            self.next.extend(page.iter().map(|d| d.sequence));
        }
    }
}
