//! Rebuilding the documents one stream's events touch (a repair after a fixed
//! build), in the agent's own turn: no page of the version commits meanwhile.
//!
//! The stream's events (of the version's types, up to its position) are sliced to
//! find the documents they touch. Those documents are folded again from nothing,
//! in sequence order, from every event that touches them: for a per-stream
//! projection that is the stream itself; for one whose documents span streams,
//! every event up to the position is read and sliced, and only the slices of those
//! documents applied (documents fed by other streams stay whole). Everything is
//! written in one commit at the version's position, or nothing if any call fails.
//!
//! Bounded like a page: every read takes one of the team's read turns, every guest
//! call one of its instance slots; a stop request (pause, retire, shutdown) ends it
//! between pages; at most [`MAX_REBUILT_DOCS`] documents and [`MAX_REBUILD_EVENTS`]
//! events read. Dead-lettered events stay out, as they were (a replay applies them).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::agent::{Agent, PageError};
use super::dead_letter_walk::Letters;
use crate::runtime::{DocChange, DocInput, Event, Fault};
use crate::store::{DocWrite, PageCommit, Position, ReadBudget, StreamId};

/// The most documents one stream's rebuild may touch (their states are held until
/// the one commit); more is refused before anything is applied.
pub const MAX_REBUILT_DOCS: usize = 10_000;
/// The most events one stream's rebuild reads by default (the whole store, sliced,
/// for documents that span streams): past it, rebuild the whole version instead.
/// The config's `rebuild_max_events` sets it.
pub const MAX_REBUILD_EVENTS: u64 = 1_000_000;
/// Sequences of the stream read per lookup (per-stream projections).
const SEQUENCES_PER_READ: usize = 1_000;

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

/// Why a rebuild of one stream did nothing.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RebuildError {
    /// The guest failed, or the stream's documents pass a limit: the caller's to fix.
    #[error("{0}")]
    Refused(String),
    /// The version's team may not read the stream.
    #[error("{0}")]
    Forbidden(String),
    /// The store failed, or the version is stopping or recovering: try again.
    #[error("{0}")]
    Unavailable(String),
}

impl From<PageError> for RebuildError {
    fn from(e: PageError) -> Self {
        match e {
            PageError::Guest(g) if g.fault() == Fault::Guest => Self::Refused(g.to_string()),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

impl From<crate::store::StoreError> for RebuildError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Unavailable(format!("the store failed: {e}"))
    }
}

/// Where the events to fold come from.
enum Source {
    /// The stream's own events, by sequence (per-stream documents).
    Stream(Vec<Position>),
    /// Every event of the version's types after this position.
    All(Position),
}

impl Agent {
    /// Rebuilds the documents `stream`'s events touch; see the module doc.
    pub(super) async fn rebuild_stream(
        &mut self,
        stream: &StreamId,
    ) -> Result<StreamRebuilt, RebuildError> {
        let again = |what: String| RebuildError::Unavailable(format!("{what}; try again"));
        self.settle()
            .await
            .map_err(|e| again(format!("the last commit failed ({e})")))?;
        let Some(position) = self.position else {
            return Err(again(
                "the version is recovering from a failed commit".into(),
            ));
        };
        if !self.streams.matches(stream.as_str()) {
            return Err(RebuildError::Forbidden(format!(
                "the version's team may not read stream {stream}"
            )));
        }
        let mut out = StreamRebuilt {
            position,
            ..StreamRebuilt::default()
        };
        let (targets, sequences) = self.targets(stream, position, &mut out).await?;
        if targets.is_empty() {
            return Ok(out);
        }
        let per_stream = self
            .projector
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .per_stream();
        let mut source = match per_stream {
            true => Source::Stream(sequences),
            false => Source::All(0),
        };
        let mut states: HashMap<String, Option<String>> =
            targets.iter().map(|id| (id.clone(), None)).collect();
        let mut held = 0usize;
        let mut letters = Letters::default();
        while let Some(page) = self.next_page(&mut source, position).await? {
            out.events_read += page.len() as u64;
            if out.events_read > self.rebuild_events {
                return Err(RebuildError::Refused(format!(
                    "the documents stream {stream}'s events touch take more than {} events \
                     to read (rebuild_max_events): rebuild the whole version instead",
                    self.rebuild_events
                )));
            }
            let page = Arc::new(letters.drop_from(self, page).await?);
            self.enter().await?;
            let folded = self.fold_page(&page, &targets, &states).await;
            self.leave().await;
            let Some((ids, changes, events)) = folded? else {
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
                return Err(RebuildError::Refused(format!(
                    "the documents stream {stream}'s events touch grow past {} bytes together \
                     (max_result_bytes): rebuild the whole version instead",
                    self.budget.doc_bytes
                )));
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
        self.commit(commit).await?;
        self.settle()
            .await
            .map_err(|e| again(format!("committing the rebuilt documents failed ({e})")))?;
        Ok(out)
    }

    /// The documents the stream's events (of the version's types, up to `position`,
    /// dead letters left out) touch, and those events' sequences, ascending.
    async fn targets(
        &mut self,
        stream: &StreamId,
        position: Position,
        out: &mut StreamRebuilt,
    ) -> Result<(HashSet<String>, Vec<Position>), RebuildError> {
        let mut targets: HashSet<String> = HashSet::new();
        let mut sequences = Vec::new();
        let mut letters = Letters::default();
        let mut from = 1;
        loop {
            let turn = self.read_turn().await?;
            let (_, events) = self
                .store
                .read_stream_page(stream, from, self.budget.events)
                .await?;
            drop(turn);
            let Some(last) = events.last() else { break };
            from = last.stream_version + 1;
            let mut page: Vec<Event> = events
                .into_iter()
                .filter(|e| e.sequence <= position && self.event_types.contains(&e.event_type))
                .collect();
            // Stream order is not always sequence order (PostgreSQL numbers by
            // commit): the version folded them by sequence.
            page.sort_unstable_by_key(|e| e.sequence);
            let page = letters.drop_from(self, page).await?;
            if page.is_empty() {
                continue;
            }
            out.stream_events += page.len() as u64;
            if out.stream_events > self.rebuild_events {
                return Err(RebuildError::Refused(format!(
                    "stream {stream} has more than {} events (rebuild_max_events): rebuild \
                     the whole version instead",
                    self.rebuild_events
                )));
            }
            sequences.extend(page.iter().map(|e| e.sequence));
            let page = Arc::new(page);
            self.enter().await?;
            let slices = self.call(&page, |p, page| p.slice(page)).await;
            self.leave().await;
            targets.extend(slices?.into_iter().map(|s| s.doc_id));
            if targets.len() > MAX_REBUILT_DOCS {
                return Err(RebuildError::Refused(format!(
                    "stream {stream}'s events touch more than {MAX_REBUILT_DOCS} documents: \
                     rebuild the whole version instead"
                )));
            }
        }
        sequences.sort_unstable();
        Ok((targets, sequences))
    }

    /// One of the team's read turns, unless the agent is told to stop first.
    pub(super) async fn read_turn(&self) -> Result<super::turns::Turn, RebuildError> {
        if *self.shutdown.borrow() {
            return Err(RebuildError::Unavailable("the version is stopping".into()));
        }
        self.turns
            .read_unless_stopped(&self.shutdown)
            .await
            .ok_or_else(|| RebuildError::Unavailable("the version is stopping".into()))
    }

    /// The next page of events to fold, in sequence order, up to `position`; `None`
    /// when there are no more.
    async fn next_page(
        &self,
        source: &mut Source,
        position: Position,
    ) -> Result<Option<Vec<Event>>, RebuildError> {
        let budget = ReadBudget {
            events: self.budget.events,
            bytes: self.budget.bytes,
        };
        match source {
            Source::Stream(sequences) => {
                if sequences.is_empty() {
                    return Ok(None);
                }
                let want = &sequences[..sequences.len().min(SEQUENCES_PER_READ)];
                let turn = self.read_turn().await?;
                let events = self.store.read_events(want, budget.bytes).await?;
                drop(turn);
                // Cut short by bytes: the rest come with the next read.
                let taken = events.last().map_or(want.len(), |last| {
                    want.iter().take_while(|s| **s <= last.sequence).count()
                });
                sequences.drain(..taken.max(1));
                Ok(Some(events))
            }
            Source::All(after) => {
                while *after < position {
                    let turn = self.read_turn().await?;
                    let page = self
                        .store
                        .read_page(*after, Some(&self.event_types), budget)
                        .await?;
                    drop(turn);
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
        }
    }

    /// Slices the page and applies the slices of `targets` to their `states`:
    /// their ids, changes and how many events they took, or `None` if the page
    /// touches none of them. Called between [`Agent::enter`] and [`Agent::leave`].
    async fn fold_page(
        &mut self,
        page: &Arc<Vec<Event>>,
        targets: &HashSet<String>,
        states: &HashMap<String, Option<String>>,
    ) -> Result<Option<(Vec<String>, Vec<DocChange>, u64)>, RebuildError> {
        let slices = self.call(page, |p, page| p.slice(page)).await?;
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
            .await?;
        Ok(Some((ids, changes, events.len() as u64)))
    }
}
