//! A running component: one sandboxed instance, called a page at a time. A trap
//! drops the instance; the next call makes a fresh one.

use std::collections::HashSet;

use serde::de::IgnoredAny;
use wasmtime::{Store, StoreLimitsBuilder, Trap};

use super::engine::{LoadedComponent, TICK};
use super::limits::Limits;
use super::state::HostState;
use super::types::{Descriptor, DocChange, Slice};
use super::v1::{GuestFailure, Projector, ProjectorPre, WitDocEvents, WitEvent};
use super::{RuntimeError, RuntimeError as E};
use crate::store::{MAX_STREAM_ID_LEN, RecordedEvent};

/// A page converted once into the guest's types, for `slice` and then `apply`.
pub struct GuestOutput {
    events: Vec<WitEvent>,
}

impl GuestOutput {
    /// Number of events in the page.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the page is empty.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

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
    pre: ProjectorPre<HostState>,
    component: String,
    limits: Limits,
    instance: Option<(Store<HostState>, Projector)>,
}

impl Guest {
    /// A guest for `loaded`, reported as `component` in logs and errors.
    pub fn new(loaded: &LoadedComponent, component: String) -> Self {
        Self {
            pre: loaded.pre.clone(),
            component,
            limits: loaded.limits.clone(),
            instance: None,
        }
    }

    /// Converts a page of stored events into the guest's types.
    pub fn prepare(page: &[RecordedEvent]) -> GuestOutput {
        let events = page
            .iter()
            .map(|e| WitEvent {
                sequence: e.sequence as u64,
                stream_id: e.stream_id.clone(),
                stream_version: e.stream_version,
                event_type: e.event_type.clone(),
                data: e.data.clone(),
                metadata: e.metadata.clone(),
                tenant: e.tenant.clone(),
                timestamp: e.timestamp,
            })
            .collect();
        GuestOutput { events }
    }

    /// Asks the component what it is.
    pub fn describe(&mut self) -> Result<Descriptor, RuntimeError> {
        let d = self.call("describe", None, |p, s| {
            p.refract_projection_projection().call_describe(s)
        })?;
        Ok(d.into())
    }

    /// Which documents each event of the page touches, validated.
    pub fn slice(&mut self, page: &GuestOutput) -> Result<Vec<Slice>, RuntimeError> {
        let range = page_range(&page.events);
        let res = self.call("slice", range, |p, s| {
            p.refract_projection_projection()
                .call_slice(s, &page.events)
        })?;
        let slices: Vec<Slice> = res
            .map_err(|e| self.guest_error(e.into()))?
            .into_iter()
            .map(Slice::from)
            .collect();
        let mut seen = HashSet::with_capacity(slices.len());
        for s in &slices {
            check_doc_id(&s.doc_id).map_err(|m| self.bad_result(format!("slice: {m}")))?;
            if !seen.insert(s.doc_id.as_str()) {
                return Err(
                    self.bad_result(format!("slice: document id {:?} listed twice", s.doc_id))
                );
            }
            if let Some(i) = s.events.iter().find(|&&i| i as usize >= page.events.len()) {
                return Err(self.bad_result(format!(
                    "slice: event index {i} for document {:?} is outside the page of {}",
                    s.doc_id,
                    page.events.len()
                )));
            }
        }
        Ok(slices)
    }

    /// The new state of each document, one change per input, validated.
    pub fn apply(
        &mut self,
        page: &GuestOutput,
        docs: Vec<DocInput>,
    ) -> Result<Vec<DocChange>, RuntimeError> {
        let count = docs.len();
        let input: Vec<WitDocEvents> = docs
            .into_iter()
            .map(|d| WitDocEvents {
                doc_id: d.id,
                state: d.state,
                events: d
                    .events
                    .iter()
                    .filter_map(|&i| page.events.get(i as usize).cloned())
                    .collect(),
            })
            .collect();
        let range = page_range(&page.events);
        let res = self.call("apply", range, |p, s| {
            p.refract_projection_projection().call_apply(s, &input)
        })?;
        let changes: Vec<DocChange> = res
            .map_err(|e| self.guest_error(e.into()))?
            .into_iter()
            .map(DocChange::from)
            .collect();
        if changes.len() != count {
            return Err(self.bad_result(format!(
                "apply returned {} results for {count} documents",
                changes.len()
            )));
        }
        for (change, doc) in changes.iter().zip(&input) {
            if let DocChange::Put(body) = change {
                self.check_body(&doc.doc_id, body)?;
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
        f: impl FnOnce(&Projector, &mut Store<HostState>) -> wasmtime::Result<R>,
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
            Ok((store, bindings)) => {
                store.set_epoch_deadline(ticks);
                f(bindings, store).map_err(|err| self.trapped(err, range))
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

    fn instance(&mut self) -> Result<&mut (Store<HostState>, Projector), RuntimeError> {
        if self.instance.is_none() {
            let limits = StoreLimitsBuilder::new()
                .memory_size(self.limits.memory_bytes)
                .trap_on_grow_failure(true)
                .build();
            let state = HostState::new(self.component.clone(), limits);
            let mut store = Store::new(self.pre.engine(), state);
            store.limiter(|s| &mut s.limits);
            store.epoch_deadline_trap();
            // Start functions run during instantiation: they get a call's budget too.
            store.set_epoch_deadline(self.deadline_ticks());
            let bindings = self.pre.instantiate(&mut store).map_err(|e| E::Guest {
                component: self.component.clone(),
                event_sequence: None,
                message: format!("cannot be instantiated: {e:#}"),
            })?;
            self.instance = Some((store, bindings));
        }
        self.instance
            .as_mut()
            .ok_or_else(|| E::Host("instance vanished".into()))
    }

    /// Turns a trap into an error naming the event (from the guest's panic report
    /// when it sent one) and drops the instance, whose state can no longer be trusted.
    fn trapped(&mut self, err: wasmtime::Error, range: Option<(i64, i64)>) -> RuntimeError {
        let report = self
            .instance
            .take()
            .and_then(|(store, _)| store.into_data().panic);
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
            event_sequence: e.event_sequence,
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

fn page_range(events: &[WitEvent]) -> Option<(i64, i64)> {
    Some((
        events.first()?.sequence as i64,
        events.last()?.sequence as i64,
    ))
}

fn check_doc_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_STREAM_ID_LEN || id.chars().any(char::is_control) {
        return Err(format!(
            "document id {id:?} must be 1 to {MAX_STREAM_ID_LEN} bytes without control characters"
        ));
    }
    Ok(())
}
