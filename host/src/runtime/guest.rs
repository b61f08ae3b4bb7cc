//! A running component: one sandboxed instance, called a page at a time. A trap
//! drops the instance; the next call makes a fresh one.
//!
//! A guest may declare a maximum page size (WIT 1.1.0). The daemon reads pages of at
//! most that size; `apply` also gets other callers' documents (a write-model read
//! brings all of a stream's new events), so larger inputs go to it in parts.

use std::collections::HashSet;

use serde::de::IgnoredAny;
use wasmtime::{Store, StoreLimitsBuilder, Trap};

use super::calls::{GuestFailure, PageCalls};
use super::engine::{LoadedComponent, TICK};
use super::limits::Limits;
use super::state::HostState;
use super::types::{Descriptor, DocChange, Slice, slice_by_stream};
use super::versions::{Projector, ProjectorPre};
use super::{RuntimeError, RuntimeError as E};
use crate::store::{MAX_STREAM_ID_LEN, RecordedEvent};

/// One document to bring up to date: its current JSON and its events (page indices).
#[derive(Debug, Clone)]
pub struct DocInput {
    /// The document's id.
    pub id: String,
    /// Its current JSON, if it exists.
    pub state: Option<String>,
    /// Indices of its events in the page.
    pub events: Vec<u32>,
}

/// An instantiated component with its sandbox.
pub struct Guest {
    pre: ProjectorPre,
    component: String,
    limits: Limits,
    /// The guest keeps one document per stream: pages are sliced on the host.
    per_stream: bool,
    /// The most events the guest takes in one call (its max-page-size).
    max_events: usize,
    instance: Option<Instance>,
}

/// A live instance: its store, the typed bindings (for `describe`) and the page calls.
struct Instance {
    store: Store<HostState>,
    bindings: Projector,
    calls: PageCalls,
}

impl Guest {
    /// A guest for `loaded`, reported as `component` in logs and errors.
    pub fn new(loaded: &LoadedComponent, component: String) -> Self {
        let d = &loaded.descriptor;
        Self {
            per_stream: d.per_stream(),
            max_events: d.page_size(usize::MAX),
            ..Self::for_describe(&loaded.pre, &loaded.limits, component)
        }
    }

    /// A guest whose descriptor is not known yet: for `describe` on load.
    pub(crate) fn for_describe(pre: &ProjectorPre, limits: &Limits, component: String) -> Self {
        Self {
            pre: pre.clone(),
            component,
            limits: limits.clone(),
            per_stream: false,
            max_events: usize::MAX,
            instance: None,
        }
    }

    /// Asks the component what it is, converted into the latest WIT version's terms.
    pub fn describe(&mut self) -> Result<Descriptor, RuntimeError> {
        self.call("describe", None, |i| i.bindings.describe(&mut i.store))
    }

    /// Which documents each event of the page touches, validated. Pages are at most
    /// the guest's [`Descriptor::page_size`]: a 1.1.0 guest may refuse larger ones.
    pub fn slice(&mut self, page: &[RecordedEvent]) -> Result<Vec<Slice>, RuntimeError> {
        if self.per_stream {
            // Same answer as the guest's, without lowering the page into it.
            return Ok(slice_by_stream(page));
        }
        self.slice_in_guest(page)
    }

    /// Asks the guest itself which documents each event touches, even when it
    /// declares per-stream documents (for tests and diagnostics), validated.
    pub fn slice_in_guest(&mut self, page: &[RecordedEvent]) -> Result<Vec<Slice>, RuntimeError> {
        let res = self.call("slice", page_range(page), |i| {
            i.calls.slice(&mut i.store, page)
        })?;
        let slices = res.map_err(|e| self.guest_error(e))?;
        let mut seen = HashSet::with_capacity(slices.len());
        for s in &slices {
            check_doc_id(&s.doc_id).map_err(|m| self.bad_result(format!("slice: {m}")))?;
            if !seen.insert(s.doc_id.as_str()) {
                return Err(
                    self.bad_result(format!("slice: document id {:?} listed twice", s.doc_id))
                );
            }
            if let Some(i) = s.events.iter().find(|&&i| i as usize >= page.len()) {
                return Err(self.bad_result(format!(
                    "slice: event index {i} for document {:?} is outside the page of {}",
                    s.doc_id,
                    page.len()
                )));
            }
        }
        Ok(slices)
    }

    /// The new state of each document, one change per input, validated; `page` is
    /// the page the documents' event indices point into.
    pub fn apply(
        &mut self,
        page: &[RecordedEvent],
        docs: Vec<DocInput>,
    ) -> Result<Vec<DocChange>, RuntimeError> {
        if page.len() <= self.max_events {
            return self.apply_once(page, &docs);
        }
        docs.into_iter()
            .map(|doc| self.apply_in_parts(page, doc))
            .collect()
    }

    /// Applies one document's events in parts the guest takes, its state carried from
    /// part to part; the result is the last change made.
    fn apply_in_parts(
        &mut self,
        page: &[RecordedEvent],
        doc: DocInput,
    ) -> Result<DocChange, RuntimeError> {
        let mut state = doc.state;
        let mut outcome = DocChange::Keep;
        for part in doc.events.chunks(self.max_events) {
            let input = DocInput {
                id: doc.id.clone(),
                state: state.clone(),
                events: part.to_vec(),
            };
            match self.apply_once(page, &[input])?.pop() {
                Some(DocChange::Put(body)) => {
                    state = Some(body.clone());
                    outcome = DocChange::Put(body);
                }
                Some(DocChange::Delete) => {
                    state = None;
                    outcome = DocChange::Delete;
                }
                Some(DocChange::Keep) | None => {}
            }
        }
        Ok(outcome)
    }

    fn apply_once(
        &mut self,
        page: &[RecordedEvent],
        docs: &[DocInput],
    ) -> Result<Vec<DocChange>, RuntimeError> {
        let res = self.call("apply", page_range(page), |i| {
            i.calls.apply(&mut i.store, page, docs)
        })?;
        let changes = res.map_err(|e| self.guest_error(e))?;
        if changes.len() != docs.len() {
            return Err(self.bad_result(format!(
                "apply returned {} results for {} documents",
                changes.len(),
                docs.len()
            )));
        }
        for (change, doc) in changes.iter().zip(docs) {
            if let DocChange::Put(body) = change {
                self.check_body(&doc.id, body)?;
            }
        }
        Ok(changes)
    }

    fn check_body(&self, id: &str, body: &str) -> Result<(), RuntimeError> {
        if body.len() > self.limits.max_doc_bytes {
            return Err(self.bad_result(format!(
                "document {id:?} is {} bytes; the limit is {}",
                body.len(),
                self.limits.max_doc_bytes
            )));
        }
        serde_json::from_str::<IgnoredAny>(body)
            .map(|_| ())
            .map_err(|e| self.bad_result(format!("document {id:?} is not valid JSON: {e}")))
    }

    /// Runs one call with the deadline set; a failure drops the instance. The span
    /// records which call it was and, on failure, who was at fault.
    fn call<R>(
        &mut self,
        name: &'static str,
        range: Option<(i64, i64)>,
        f: impl FnOnce(&mut Instance) -> wasmtime::Result<R>,
    ) -> Result<R, RuntimeError> {
        let span = tracing::debug_span!(
            "guest_call",
            component = %self.component,
            call = name,
            fault = tracing::field::Empty
        );
        let _entered = span.enter();
        let ticks = self.deadline_ticks();
        let result = match self.instance() {
            Ok(instance) => {
                instance.store.set_epoch_deadline(ticks);
                f(instance).map_err(|err| self.trapped(err, range))
            }
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            span.record("fault", tracing::field::debug(e.fault()));
        }
        result
    }

    fn deadline_ticks(&self) -> u64 {
        (self.limits.call_timeout().as_millis() / TICK.as_millis()).max(1) as u64
    }

    fn instance(&mut self) -> Result<&mut Instance, RuntimeError> {
        if self.instance.is_none() {
            let limits = StoreLimitsBuilder::new()
                .memory_size(self.limits.memory_bytes)
                .trap_on_grow_failure(true)
                .build();
            let state = HostState::new(self.component.clone(), limits);
            let pre = self.pre.instance_pre();
            let mut store = Store::new(pre.engine(), state);
            store.limiter(|s| &mut s.limits);
            store.epoch_deadline_trap();
            // Start functions run during instantiation: they get a call's budget too.
            store.set_epoch_deadline(self.deadline_ticks());
            let failed = |e: wasmtime::Error| E::Guest {
                component: self.component.clone(),
                event_sequence: None,
                message: format!("cannot be instantiated: {e:#}"),
            };
            let instance = pre.instantiate(&mut store).map_err(failed)?;
            let bindings = self.pre.bindings(&mut store, &instance).map_err(failed)?;
            let export = self.pre.version().projection_export();
            let calls = PageCalls::lookup(&mut store, &instance, export).map_err(failed)?;
            self.instance = Some(Instance {
                store,
                bindings,
                calls,
            });
        }
        self.instance
            .as_mut()
            .ok_or_else(|| E::Host("instance vanished".into()))
    }

    /// Turns a trap into an error naming the event (from the guest's panic report
    /// when it sent one) and drops the instance, whose state can no longer be trusted.
    fn trapped(&mut self, err: wasmtime::Error, range: Option<(i64, i64)>) -> RuntimeError {
        let report = self.instance.take().and_then(|i| i.store.into_data().panic);
        if let Some(p) = report {
            return E::Guest {
                component: self.component.clone(),
                event_sequence: p.event_sequence,
                message: format!("panicked: {}", p.message),
            };
        }
        let what = match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => format!(
                "exceeded its CPU time limit of {} ms per call",
                self.limits.call_timeout_ms
            ),
            Some(trap) => format!("trapped: {trap}"),
            None => format!("trapped: {err:#}"),
        };
        let page = range
            .map(|(a, b)| format!(" (page of events {a}..={b})"))
            .unwrap_or_default();
        E::Guest {
            component: self.component.clone(),
            event_sequence: None,
            message: format!("{what}{page}"),
        }
    }

    fn guest_error(&self, e: GuestFailure) -> RuntimeError {
        E::Guest {
            component: self.component.clone(),
            event_sequence: e.event_sequence(),
            message: e.message,
        }
    }

    fn bad_result(&self, message: String) -> RuntimeError {
        E::Guest {
            component: self.component.clone(),
            event_sequence: None,
            message: format!("returned an invalid result: {message}"),
        }
    }
}

fn page_range(events: &[RecordedEvent]) -> Option<(i64, i64)> {
    Some((events.first()?.sequence, events.last()?.sequence))
}

fn check_doc_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_STREAM_ID_LEN || id.chars().any(char::is_control) {
        return Err(format!(
            "document id {id:?} must be 1 to {MAX_STREAM_ID_LEN} bytes without control characters"
        ));
    }
    Ok(())
}
