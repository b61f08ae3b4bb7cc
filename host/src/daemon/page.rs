//! Projecting one page: slice, load what the cache lacks, apply, then commit the
//! writes (in flight while the next page is projected); and the replay of dead
//! letters, which goes the same way.

use std::sync::Arc;
use std::time::Instant;

use super::PageProjector;
use super::agent::{Agent, PageError};
use super::metrics::Phase;
use crate::runtime::{DocChange, DocInput, Event, RuntimeError, Slice};
use crate::store::{DocWrite, PageCommit};

/// What a replay of dead letters did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Replayed {
    /// Applied, and removed from the dead letters.
    pub replayed: u64,
    /// Still failing: they stay dead letters.
    pub failing: u64,
    /// Letters whose event is no longer there: they stay too.
    pub missing: u64,
}

impl Agent {
    /// Projects the events and commits their writes with `commit`'s progress. The
    /// page's instance lives under one of the team's slots (waited for first) and is
    /// dropped when the page is done: an idle version holds no instance.
    pub(super) async fn project(
        &mut self,
        events: Arc<Vec<Event>>,
        commit: PageCommit,
    ) -> Result<(), PageError> {
        self.enter().await?;
        let result = self.project_page(events, commit).await;
        self.leave().await;
        result
    }

    /// Refuses a page of several events that looked up one of the documents it
    /// writes: a lookup sees the documents before the page, so an earlier event of
    /// the same page may have changed what it read. Narrowed (halved, down to one
    /// event), every lookup sees every event before it, whatever the page size.
    fn narrow_if_looked_up(
        &self,
        events: &[Event],
        slices: &[crate::runtime::Slice],
        looked_up: &std::collections::HashSet<String>,
    ) -> Result<(), PageError> {
        let overlap = !looked_up.is_empty() && slices.iter().any(|s| looked_up.contains(&s.doc_id));
        match overlap && events.len() > 1 {
            true => Err(PageError::Narrow(events.len() / 2)),
            false => Ok(()),
        }
    }

    /// Waits for one of the team's instance slots and gives it to the projector:
    /// the instance of the calls until [`Agent::leave`] lives under it.
    pub(super) async fn enter(&mut self) -> Result<(), PageError> {
        let slot = match &self.slots {
            Some(slots) => {
                let acquire = super::shared::slot_or_stop(slots, self.shutdown.clone());
                Some(acquire.await.map_err(PageError::Guest)?)
            }
            None => None,
        };
        // On a blocking thread: a call the watchdog gave up on may still hold the
        // projector's lock, and no runtime worker may wait for it.
        let projector = self.projector.clone();
        let admitted = tokio::task::spawn_blocking(move || {
            if let Some(slot) = slot {
                projector
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .admit(slot);
            }
        })
        .await;
        admitted.map_err(|e| {
            PageError::Guest(RuntimeError::Host(format!(
                "admitting the page's instance: {e}"
            )))
        })
    }

    /// Drops the instance [`Agent::enter`] admitted and frees its slot.
    pub(super) async fn leave(&mut self) {
        let projector = self.projector.clone();
        let released = tokio::task::spawn_blocking(move || {
            projector
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .release();
        })
        .await;
        if let Err(e) = released {
            tracing::error!(projection = %self.key, "releasing the page's instance: {e}");
        }
    }

    async fn project_page(
        &mut self,
        events: Arc<Vec<Event>>,
        mut commit: PageCommit,
    ) -> Result<(), PageError> {
        let applied = events.len() as u64;
        if self.lookups {
            self.settle().await?;
        }
        let page_no = self.cache.begin_page();
        let t = Instant::now();
        let (slices, looked_up) = self
            .call(&events, |p, page| Ok((p.slice(page)?, p.take_looked_up())))
            .await?;
        self.narrow_if_looked_up(&events, &slices, &looked_up)?;
        self.burst.add(Phase::Slice, t.elapsed());
        self.counters.guest_time(t.elapsed());
        let t = Instant::now();
        self.load_missing(&slices, &events).await?;
        self.burst.add(Phase::Load, t.elapsed());
        let inputs: Vec<DocInput> = slices
            .iter()
            .map(|s| DocInput {
                id: s.doc_id.clone(),
                state: self.cache.get(&s.doc_id).flatten(),
                events: s.events.clone(),
            })
            .collect();
        let t = Instant::now();
        let (changes, looked_up) = self
            .call(&events, move |p, page| {
                Ok((p.apply(page, inputs)?, p.take_looked_up()))
            })
            .await?;
        self.narrow_if_looked_up(&events, &slices, &looked_up)?;
        self.burst.add(Phase::Apply, t.elapsed());
        self.counters.guest_time(t.elapsed());
        self.counters.page(applied as usize);
        let mut writes = Vec::with_capacity(changes.len());
        for (slice, change) in slices.into_iter().zip(changes) {
            match change {
                DocChange::Put(body) => {
                    self.cache.put(slice.doc_id.clone(), Some(body.clone()));
                    writes.push(DocWrite::Put {
                        id: slice.doc_id,
                        body,
                    });
                }
                DocChange::Delete => {
                    self.cache.put(slice.doc_id.clone(), None);
                    writes.push(DocWrite::Delete { id: slice.doc_id });
                }
                DocChange::Keep => {}
            }
        }
        commit.writes = writes;
        commit.applied = applied;
        self.commit(commit).await?;
        self.burst.page(applied as usize);
        // Only this page's commit is in flight now (the one before it settled), and
        // it writes only entries of this page: older pages may go.
        self.cache.evict_before(page_no);
        Ok(())
    }

    /// Fills the cache with the documents the page touches that it does not know.
    /// Documents of more than the page's byte budget together (cached or stored,
    /// so the outcome depends only on the documents and the page) are the guest's
    /// fault: it made them and routes the page to them. Refused before any is read.
    async fn load_missing(&mut self, slices: &[Slice], events: &[Event]) -> Result<(), PageError> {
        // One pass, no sort of every id (a page touches thousands): a document named
        // by two slices counts twice, which only makes the guest's budget stricter.
        let (mut cached, mut missing) = (0usize, Vec::new());
        for id in slices.iter().map(|s| s.doc_id.as_str()) {
            match self.cache.body_len(id) {
                Some(len) => cached = cached.saturating_add(len),
                None => missing.push(id),
            }
        }
        let max = self.budget.doc_bytes;
        if cached > max {
            return Err(self.too_many_doc_bytes(events));
        }
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        if self.cache.is_whole() {
            for id in missing {
                self.cache.put(id.to_owned(), None);
            }
            return Ok(());
        }
        // A read at the store like the page's own: one of the team's read turns.
        let turn = self.turns.read().await;
        let loaded = self
            .store
            .load_docs_within(&self.key, &missing, max - cached)
            .await;
        drop(turn);
        let Some(mut found) = loaded? else {
            return Err(self.too_many_doc_bytes(events));
        };
        for id in missing {
            let body = found.remove(id);
            self.cache.put(id.to_owned(), body);
        }
        Ok(())
    }

    /// The guest's error for a page whose documents pass its byte budget.
    fn too_many_doc_bytes(&self, events: &[Event]) -> PageError {
        let max = self.budget.doc_bytes;
        PageError::Guest(RuntimeError::Guest {
            component: self.key.to_string(),
            event_sequence: events
                .first()
                .map(|e| e.sequence)
                .filter(|_| events.len() == 1),
            message: format!(
                "the documents the page's events touch are more than {max} bytes together \
                 (max_result_bytes); a page of one event that touches them is refused"
            ),
        })
    }

    /// Applies the version's dead letters again, oldest first, a page at a time
    /// (bounded by the page's events and bytes); each page removes the ones it
    /// applied in the same transaction as its writes. A page that fails is tried
    /// again one event at a time, so one letter that still fails keeps only itself
    /// back. Answers how many were applied and how many still fail.
    pub(super) async fn replay_dead_letters(&mut self) -> Result<Replayed, String> {
        self.settle()
            .await
            .map_err(|e| format!("the last commit failed ({e}); try again"))?;
        let Some(position) = self.position else {
            return Err("the version is recovering from a failed commit; try again".into());
        };
        let mut out = Replayed::default();
        let mut after = 0;
        // A page of letters at a time (keyset on the sequence): failing ones stay
        // behind without being met again.
        while !*self.shutdown.borrow() {
            let letters = self
                .store
                .dead_letter_page(&self.key, after, self.budget.events.min(1_000))
                .await
                .map_err(|e| e.to_string())?;
            let Some(last) = letters.last() else {
                break;
            };
            after = last.sequence;
            let todo = letters.iter().map(|d| d.sequence).collect();
            self.replay_letters(position, todo, &mut out).await?;
        }
        self.settle()
            .await
            .map_err(|e| format!("committing the replay failed: {e}"))?;
        if out.replayed == 0 && out.failing > 0 {
            return Err(format!(
                "replaying dead letters failed: {} still fail (see their errors)",
                out.failing
            ));
        }
        Ok(out)
    }

    /// Replays the events of these letters, pages bounded by the budget's bytes; a
    /// failing page is tried again one event at a time.
    async fn replay_letters(
        &mut self,
        position: crate::store::Position,
        mut todo: std::collections::VecDeque<i64>,
        out: &mut Replayed,
    ) -> Result<(), String> {
        while !todo.is_empty() {
            let want: Vec<i64> = todo.iter().copied().collect();
            let mut events = self
                .store
                .read_events(&want, self.budget.bytes)
                .await
                .map_err(|e| e.to_string())?;
            let Some(last) = events.last().map(|e| e.sequence) else {
                // Their events are gone: nothing to apply.
                out.missing += todo.len() as u64;
                return Ok(());
            };
            let taken = todo.iter().take_while(|s| **s <= last).count();
            let mut sequences: Vec<i64> = todo.drain(..taken).collect();
            // Events of streams the team may no longer read are not applied (they
            // stay letters, as if missing).
            if !self.streams.is_all() {
                let (kept, unreadable): (Vec<_>, Vec<_>) = events
                    .into_iter()
                    .partition(|e| self.streams.matches(&e.stream_id));
                events = kept;
                let unreadable: std::collections::HashSet<i64> =
                    unreadable.iter().map(|e| e.sequence).collect();
                sequences.retain(|s| !unreadable.contains(s));
                out.missing += unreadable.len() as u64;
                if events.is_empty() {
                    continue;
                }
            }
            if self.replay_page(position, events.clone(), sequences).await {
                out.replayed += events.len() as u64;
                continue;
            }
            for event in events {
                let seq = event.sequence;
                if self.replay_page(position, vec![event], vec![seq]).await {
                    out.replayed += 1;
                } else {
                    out.failing += 1;
                }
            }
        }
        Ok(())
    }

    /// Projects dead-lettered events as one page; answers whether it was applied and
    /// committed (the letters keep their first error otherwise).
    async fn replay_page(
        &mut self,
        position: crate::store::Position,
        events: Vec<Event>,
        sequences: Vec<i64>,
    ) -> bool {
        let commit = PageCommit {
            position,
            replayed: sequences,
            ..Default::default()
        };
        let first = events.first().map(|e| e.sequence);
        match self.project(Arc::new(events), commit).await {
            // Counted only once its commit (which removes the letters) has landed.
            Ok(()) => match self.settle().await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(projection = %self.key, "replay commit failed: {e}");
                    false
                }
            },
            Err(e) => {
                self.counters_error(&e);
                let _ = self.settle().await;
                if let (Some(sequence), PageError::Guest(g)) = (first, &e) {
                    tracing::warn!(projection = %self.key, sequence, "dead letter still fails: {g}");
                }
                false
            }
        }
    }

    fn counters_error(&self, e: &PageError) {
        if let PageError::Guest(g) = e {
            self.counters.error(g);
        }
    }

    /// Runs a projector call on a blocking thread: wasmtime calls are synchronous and
    /// WASI must not block a tokio worker.
    pub(super) async fn call<R: Send + 'static>(
        &self,
        page: &Arc<Vec<Event>>,
        f: impl FnOnce(&mut dyn PageProjector, &[Event]) -> Result<R, RuntimeError> + Send + 'static,
    ) -> Result<R, PageError> {
        let projector = self.projector.clone();
        let page = page.clone();
        // Watched: the wait for the lock a stuck call holds counts too.
        let result = super::shared::watched(&self.key, self.deadline, move || {
            // A panic in an earlier call leaves the lock poisoned; the projector
            // drops its instance on any failure, so going on with it is sound.
            let mut p = projector.lock().unwrap_or_else(|p| p.into_inner());
            f(p.as_mut(), &page)
        })
        .await;
        Ok(result?)
    }
}
