//! Inline projections (issue 14): a version with lifecycle `inline` is projected
//! inside the transaction of each of its own team's appends once it is caught up,
//! so the append's answer means its documents hold the events; a guest error
//! rejects the append (422, naming the event) and writes nothing. Its agent still
//! runs: it catches the version up after a deploy, rebuild or pause, and projects
//! the events other teams append to streams it reads (another team's append never
//! runs this team's code). The team's inline projections run while the store's
//! write lock is held, so together they have a wall-clock budget per append (the
//! team's `inline_budget_ms`, default 1,000 ms), each call also held to its call
//! timeout; past it the append is refused. SQLite only: PostgreSQL numbers events
//! after their transaction commits.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Mutex;

use super::{Refract, ServiceError};
use crate::daemon::lookup::{Documents, StateFirst, StoreLookup};
use crate::runtime::watchdog::{GRACE, run_watched};
use crate::runtime::{
    DocChange, DocInput, Event, Fault, Guest, Lifecycle, Limit, Loaded, LoadedComponent,
    RuntimeError,
};
use crate::store::{
    AppendRequest, AppendResult, DocWrite, InlineAppendError, InlineDocs, InlineOutcome,
    InlineProjector, InlineRefusal, InlineVersion, InlineWrites, ProjectionKey,
};
use crate::teams::Streams;

/// One version's inline run in one append.
struct Run {
    loaded: LoadedComponent,
    /// Its instance (made under the append's one slot), dropped once it is done.
    guest: Option<Guest>,
    /// For a version with lookups: the documents as this append's earlier events
    /// left them, which its lookups see before the store's.
    seen: Option<Arc<std::sync::Mutex<Documents>>>,
}

/// The inline projections of one append.
pub(super) struct Inline {
    versions: Vec<InlineVersion>,
    runs: HashMap<ProjectionKey, Mutex<Run>>,
    streams: Streams,
    page_size: usize,
    /// The wall-clock budget of all its guest calls together (the team's
    /// `inline_budget_ms`): they run while the store's write lock is held.
    budget: Duration,
    /// When its first guest call started.
    started: std::sync::Mutex<Option<Instant>>,
    /// One of the team's instance slots, taken before the transaction (a wait for
    /// one never holds the write lock) and held to the end: one guest runs at a
    /// time.
    _slot: Option<crate::runtime::Slot>,
    /// Versions not projected in this append, with why.
    deferred: Vec<InlineOutcome>,
}

impl Refract {
    /// Appends events to a stream, projecting the appending team's inline versions
    /// in the same transaction; says what became of each.
    pub async fn append_projected(
        &self,
        req: AppendRequest,
    ) -> Result<(AppendResult, Vec<InlineOutcome>), ServiceError> {
        let types: Vec<&str> = req.events.iter().map(|e| e.event_type.as_str()).collect();
        let Some(inline) = self.inline_for(&req.team, &types).await? else {
            return Ok((self.store.append(req).await?, Vec::new()));
        };
        if inline.versions.is_empty() {
            return Ok((self.store.append(req).await?, inline.deferred));
        }
        match self.store.append_inline(req, &inline).await {
            Ok((result, mut outcomes)) => {
                outcomes.extend(inline.deferred);
                Ok((result, outcomes))
            }
            Err(InlineAppendError::Store(e)) => Err(e.into()),
            Err(InlineAppendError::Refused(InlineRefusal(e))) => match e.downcast::<ServiceError>()
            {
                Ok(e) => Err(*e),
                Err(e) => Err(ServiceError::Busy(e.to_string())),
            },
        }
    }

    /// The inline versions of `team` that handle one of `types` (an append's), with
    /// an instance each; none if there are none (or the store projects nothing
    /// inline). A version handling none of them is not behind for it: its next
    /// inline append passes over them.
    async fn inline_for(&self, team: &str, types: &[&str]) -> Result<Option<Inline>, ServiceError> {
        if !self.store.supports_inline() {
            return Ok(None);
        }
        let mine: Vec<(ProjectionKey, LoadedComponent)> = self
            .loaded_components()
            .iter()
            .filter(|(key, _)| crate::teams::team_of(&key.name) == team)
            .filter_map(|(key, loaded)| match loaded {
                Loaded::Projection(l)
                    if self.lifecycle_for(key, &l.descriptor, false) == Lifecycle::Inline
                        && l.descriptor
                            .event_types
                            .iter()
                            .any(|t| types.contains(&t.as_str())) =>
                {
                    Some((key.clone(), l.clone()))
                }
                _ => None,
            })
            .collect();
        if mine.is_empty() {
            return Ok(None);
        }
        let page_size = self.daemon.page_size();
        let (budget, slot) = match mine.first() {
            Some((key, loaded)) => (
                loaded.limits.inline_budget(),
                self.guest_reads.slot(key, loaded).await?,
            ),
            None => return Ok(None),
        };
        let mut versions = Vec::with_capacity(mine.len());
        let mut runs = HashMap::with_capacity(mine.len());
        let mut deferred = Vec::new();
        for (key, mut loaded) in mine {
            // A candidate rebuilding beside it would swap in without what this
            // append wrote: its agent projects the events instead.
            if self.has_candidate(&key) {
                deferred.push(InlineOutcome::Deferred {
                    key,
                    reason: "it is being rebuilt beside its served documents".into(),
                });
                continue;
            }
            // Under the append's one slot, not one each.
            loaded.slots = None;
            let mut guest = Guest::new(&loaded, key.to_string()).with_page_size(page_size);
            // Lookups see the append's earlier events, then what was committed
            // before it (the write transaction is open: the readers see that).
            let seen: Option<Arc<std::sync::Mutex<Documents>>> =
                loaded.descriptor.uses_lookups().then(Arc::default);
            if let Some(seen) = &seen {
                let store = StoreLookup::source(self.store.clone(), key.clone());
                let seen = seen.clone();
                guest.set_lookup(Some(Arc::new(StateFirst { seen, store })));
            }
            versions.push(InlineVersion {
                key: key.clone(),
                event_types: loaded.descriptor.event_types.clone(),
                sha256: loaded.sha256.clone(),
            });
            let run = Run {
                loaded,
                guest: Some(guest),
                seen,
            };
            runs.insert(key, Mutex::new(run));
        }
        Ok(Some(Inline {
            versions,
            runs,
            streams: self.teams.access(team).read,
            page_size,
            budget,
            started: std::sync::Mutex::new(None),
            _slot: slot,
            deferred,
        }))
    }
}

#[async_trait]
impl InlineProjector for Inline {
    fn versions(&self) -> &[InlineVersion] {
        &self.versions
    }

    async fn project(
        &self,
        key: &ProjectionKey,
        events: &[Event],
        docs: &mut dyn InlineDocs,
    ) -> Result<InlineWrites, InlineRefusal> {
        let refusal = |e: ServiceError| InlineRefusal(Box::new(e));
        let Some(run) = self.runs.get(key) else {
            return Ok(InlineWrites::default());
        };
        let mut run = run.lock().await;
        let types = &run.loaded.descriptor.event_types;
        let mine: Vec<Event> = events
            .iter()
            .filter(|e| types.contains(&e.event_type) && self.streams.matches(&e.stream_id))
            .cloned()
            .collect();
        let first = events.first().map_or(0, |e| e.sequence);
        // With lookups, an event at a time: each sees every one before it.
        let page_size = match run.seen {
            Some(_) => 1,
            None => run.loaded.descriptor.page_size(self.page_size),
        };
        // The documents as this append leaves them so far (`None`: deleted).
        let mut state: HashMap<String, Option<String>> = HashMap::new();
        let mut held = 0usize;
        let max_bytes = run.loaded.limits.max_result_bytes;
        for page in mine.chunks(page_size) {
            let page = page.to_vec();
            let left = self.left();
            let (slices, page) = run.call(key, first, left, page, |g, p| g.slice(p)).await?;
            let missing: Vec<&str> = slices
                .iter()
                .map(|s| s.doc_id.as_str())
                .filter(|id| !state.contains_key(*id))
                .collect();
            let Some(mut loaded) = docs.load(&missing, max_bytes).await.map_err(|e| {
                refusal(ServiceError::Busy(format!("inline projection {key}: {e}")))
            })?
            else {
                return Err(refusal(too_big(key, max_bytes)));
            };
            let inputs: Vec<DocInput> = slices
                .into_iter()
                .map(|s| DocInput {
                    state: match state.get(&s.doc_id) {
                        Some(known) => known.clone(),
                        None => loaded.remove(&s.doc_id),
                    },
                    id: s.doc_id,
                    events: s.events,
                })
                .collect();
            let ids: Vec<(String, Option<String>)> = inputs
                .iter()
                .map(|d| (d.id.clone(), d.state.clone()))
                .collect();
            let left = self.left();
            let (changes, _) = run
                .call(key, first, left, page, move |g, p| g.apply(p, inputs))
                .await?;
            for ((id, before), change) in ids.into_iter().zip(changes) {
                let after = match change {
                    DocChange::Put(body) => Some(body),
                    DocChange::Delete => None,
                    DocChange::Keep => before,
                };
                held = held.saturating_add(after.as_ref().map_or(0, String::len));
                if let Some(seen) = &run.seen {
                    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                    seen.insert(id.clone(), after.clone());
                }
                state.insert(id, after);
            }
            // Every page's documents stay in memory until the commit: bounded.
            if held > max_bytes.saturating_mul(4) {
                return Err(refusal(too_big(key, max_bytes.saturating_mul(4))));
            }
        }
        // Done with it: one live instance at a time.
        run.guest = None;
        let writes = state
            .into_iter()
            .map(|(id, body)| match body {
                Some(body) => DocWrite::Put { id, body },
                None => DocWrite::Delete { id },
            })
            .collect();
        Ok(InlineWrites {
            writes,
            applied: mine.len(),
        })
    }
}

impl Inline {
    /// What is left of the append's budget (it starts with the first call), or
    /// none: (the budget, what is left).
    fn left(&self) -> (Duration, Duration) {
        let mut started = self.started.lock().unwrap_or_else(|p| p.into_inner());
        let at = *started.get_or_insert_with(Instant::now);
        (self.budget, self.budget.saturating_sub(at.elapsed()))
    }
}

impl Run {
    /// Runs `f` on its instance off the async threads, within what is left of the
    /// append's budget (`left`: the budget, what is left of it) and its call
    /// timeout; the page comes back with the answer. A guest error names the event
    /// by its place in the append (its sequence is not committed).
    async fn call<R: Send + 'static>(
        &mut self,
        key: &ProjectionKey,
        first: i64,
        (budget, left): (Duration, Duration),
        page: Vec<Event>,
        f: impl FnOnce(&mut Guest, &[Event]) -> Result<R, RuntimeError> + Send + 'static,
    ) -> Result<(R, Vec<Event>), InlineRefusal> {
        let refusal = |e: ServiceError| InlineRefusal(Box::new(e));
        if left.is_zero() {
            return Err(refusal(over_budget(key, budget)));
        }
        let Some(mut guest) = self.guest.take() else {
            return Err(refusal(ServiceError::Busy(format!(
                "inline projection {key}: its instance was lost"
            ))));
        };
        let deadline = left.min(self.loaded.limits.call_timeout());
        guest.set_call_timeout(deadline);
        let name = key.to_string();
        let out = run_watched(&name, deadline, GRACE, true, move || {
            let out = f(&mut guest, &page);
            Ok((out, guest, page))
        })
        .await;
        let (out, guest, page) = match out {
            Ok(done) => done,
            // The watchdog gave up on a call past its deadline: the guest's.
            Err(e) if e.fault() == Fault::Guest => {
                return Err(refusal(over_budget(key, budget)));
            }
            Err(e) => return Err(refusal(host(key, e))),
        };
        self.guest = Some(guest);
        match out {
            Ok(r) => Ok((r, page)),
            Err(e @ RuntimeError::Guest { .. }) => {
                let cpu = e.limit() == Some(Limit::Cpu);
                let RuntimeError::Guest {
                    component,
                    event_sequence,
                    message,
                } = e
                else {
                    unreachable!("matched above");
                };
                // The sequences were never committed: the events by their place.
                let at = match (event_sequence, page.first(), page.last()) {
                    (Some(s), _, _) => format!("event #{} of the append", s - first),
                    (None, Some(a), Some(b)) => format!(
                        "the append's events #{}..=#{}",
                        a.sequence - first,
                        b.sequence - first
                    ),
                    _ => "the append".to_owned(),
                };
                let message = if cpu {
                    format!(
                        "inline projection {key} used up the inline budget of {} ms for one \
                         append (inline_budget_ms; call_timeout_ms per call) on {at} (nothing \
                         was written): append fewer events at once",
                        budget
                            .as_millis()
                            .min(self.loaded.limits.call_timeout().as_millis())
                    )
                } else {
                    format!(
                        "inline projection {key} refused the append at {at} (nothing was \
                         written): {message}"
                    )
                };
                Err(refusal(ServiceError::Guest(RuntimeError::Guest {
                    component,
                    event_sequence: None,
                    message,
                })))
            }
            Err(e) => Err(refusal(host(key, e))),
        }
    }
}

fn over_budget(key: &ProjectionKey, budget: Duration) -> ServiceError {
    ServiceError::Guest(RuntimeError::Guest {
        component: key.to_string(),
        event_sequence: None,
        message: format!(
            "inline projection {key} used up the inline budget of {} ms for one append \
             (inline_budget_ms; nothing was written): append fewer events at once",
            budget.as_millis()
        ),
    })
}

fn too_big(key: &ProjectionKey, max: usize) -> ServiceError {
    ServiceError::Guest(RuntimeError::Guest {
        component: key.to_string(),
        event_sequence: None,
        message: format!(
            "inline projection {key}: the append's documents are over {max} bytes (nothing \
             was written): append fewer events at once"
        ),
    })
}

fn host(key: &ProjectionKey, e: RuntimeError) -> ServiceError {
    ServiceError::Busy(format!(
        "inline projection {key} could not run (nothing was written): {e}"
    ))
}
