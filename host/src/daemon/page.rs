//! Projecting one page: slice, load what the cache lacks, apply, then commit the
//! writes (in flight while the next page is projected); and the replay of dead
//! letters, which goes the same way.

use std::sync::Arc;
use std::time::Instant;

use super::PageProjector;
use super::agent::{Agent, PageError};
use super::metrics::Phase;
use crate::runtime::{DocChange, DocInput, RuntimeError, Slice};
use crate::store::{DocWrite, PageCommit, RecordedEvent, StoreError};

impl Agent {
    /// Projects the events and commits their writes with `commit`'s progress.
    pub(super) async fn project(
        &mut self,
        events: Arc<Vec<RecordedEvent>>,
        mut commit: PageCommit,
    ) -> Result<(), PageError> {
        let applied = events.len() as u64;
        let page_no = self.cache.begin_page();
        let t = Instant::now();
        let slices = self.call(&events, |p, page| p.slice(page)).await?;
        self.burst.add(Phase::Slice, t.elapsed());
        self.counters.guest_time(t.elapsed());
        let t = Instant::now();
        self.load_missing(&slices).await?;
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
        let changes = self
            .call(&events, move |p, page| p.apply(page, inputs))
            .await?;
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
    async fn load_missing(&mut self, slices: &[Slice]) -> Result<(), StoreError> {
        let mut missing: Vec<&str> = slices
            .iter()
            .map(|s| s.doc_id.as_str())
            .filter(|id| !self.cache.contains(id))
            .collect();
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
        let mut found = self.store.load_docs(&self.key, &missing).await?;
        for id in missing {
            let body = found.remove(id);
            self.cache.put(id.to_owned(), body);
        }
        Ok(())
    }

    /// Applies the version's dead letters again, oldest first, a page at a time;
    /// each page removes the ones it applied in the same transaction as its
    /// writes. A failure leaves the rest dead-lettered and is returned.
    pub(super) async fn replay_dead_letters(&mut self) -> Result<u64, String> {
        self.settle()
            .await
            .map_err(|e| format!("the last commit failed ({e}); try again"))?;
        let Some(position) = self.position else {
            return Err("the version is recovering from a failed commit; try again".into());
        };
        let letters = self
            .store
            .dead_letters(&self.key)
            .await
            .map_err(|e| e.to_string())?;
        let mut replayed = 0;
        for chunk in letters.chunks(self.budget.events.max(1)) {
            let sequences: Vec<i64> = chunk.iter().map(|d| d.sequence).collect();
            let events = self
                .store
                .read_events(&sequences)
                .await
                .map_err(|e| e.to_string())?;
            let n = events.len() as u64;
            let commit = PageCommit {
                position,
                replayed: sequences,
                ..Default::default()
            };
            match self.project(Arc::new(events), commit).await {
                Ok(()) => replayed += n,
                Err(e) => {
                    self.counters_error(&e);
                    let _ = self.settle().await;
                    return Err(format!("replaying dead letters failed: {e}"));
                }
            }
        }
        self.settle()
            .await
            .map_err(|e| format!("committing the replay failed: {e}"))?;
        Ok(replayed)
    }

    fn counters_error(&self, e: &PageError) {
        if let PageError::Guest(g) = e {
            self.counters.error(g);
        }
    }

    /// Runs a projector call on a blocking thread: wasmtime calls are synchronous and
    /// WASI must not block a tokio worker.
    async fn call<R: Send + 'static>(
        &self,
        page: &Arc<Vec<RecordedEvent>>,
        f: impl FnOnce(&mut dyn PageProjector, &[RecordedEvent]) -> Result<R, RuntimeError>
        + Send
        + 'static,
    ) -> Result<R, PageError> {
        let projector = self.projector.clone();
        let page = page.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut p = projector
                .lock()
                .map_err(|_| RuntimeError::Host("projector lock poisoned".into()))?;
            f(p.as_mut(), &page)
        })
        .await?;
        Ok(result?)
    }
}
