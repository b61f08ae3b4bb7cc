//! A running component: one sandboxed instance, called a page at a time. A trap
//! drops the instance; the next call makes a fresh one.
//!
//! A guest may declare a maximum page size (WIT 1.1.0). The daemon reads pages of at
//! most that size; `apply` also gets other callers' documents (a write-model read
//! brings all of a stream's new events), so larger inputs go to it in parts.

use std::collections::HashSet;

use serde::de::IgnoredAny;
use wasmtime::Store;
use wasmtime::component::Instance;

use super::RuntimeError;
use super::calls::{GuestFailure, PageCalls};
use super::engine::LoadedComponent;
use super::limits::Limits;
use super::sandbox::Sandbox;
use super::slots::{InstanceSlots, Slot};
use super::state::HostState;
use super::types::{Descriptor, DocChange, Slice, slice_by_stream};
use super::versions::{Projector, ProjectorPre};
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
    sandbox: Sandbox<Calls>,
    /// The guest keeps one document per stream: pages are sliced on the host.
    per_stream: bool,
    /// The most events the guest takes in one call (its max-page-size).
    max_events: usize,
}

/// What an instance offers: the typed bindings (for `describe`) and the page calls.
struct Calls {
    bindings: Projector,
    page: PageCalls,
}

impl Guest {
    /// A guest for `loaded`, reported as `component` in logs and errors.
    pub fn new(loaded: &LoadedComponent, component: String) -> Self {
        let d = &loaded.descriptor;
        let mut guest = Self {
            per_stream: d.per_stream(),
            max_events: d.page_size(usize::MAX),
            ..Self::for_describe(&loaded.pre, &loaded.limits, component)
        };
        guest.sandbox.set_slots(loaded.slots.clone());
        guest
    }

    /// The slots its instances are made under (its team's), if budgeted.
    pub fn slots(&self) -> Option<InstanceSlots> {
        self.sandbox.slots().cloned()
    }

    /// Gives it the slot its next instance lives under.
    pub fn admit(&mut self, slot: Slot) {
        self.sandbox.admit(slot);
    }

    /// Drops its instance and frees the slot (the next call makes a fresh one).
    pub fn release(&mut self) {
        self.sandbox.release();
    }

    /// A guest whose descriptor is not known yet: for `describe` on load.
    pub(crate) fn for_describe(pre: &ProjectorPre, limits: &Limits, component: String) -> Self {
        let linked = pre.clone();
        let make = move |store: &mut Store<HostState>, instance: &Instance| {
            let bindings = linked.bindings(store, instance)?;
            let export = linked.version().projection_export();
            let page = PageCalls::lookup(store, instance, export)?;
            Ok(Calls { bindings, page })
        };
        Self {
            sandbox: Sandbox::new(pre.instance_pre().clone(), component, limits.clone(), make),
            per_stream: false,
            max_events: usize::MAX,
        }
    }

    /// Asks the component what it is, converted into the latest WIT version's terms.
    pub fn describe(&mut self) -> Result<Descriptor, RuntimeError> {
        self.sandbox
            .call("describe", None, |store, c| c.bindings.describe(store))
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
        let res = self.sandbox.call("slice", page_range(page), |store, c| {
            c.page.slice(store, page)
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
        let res = self.sandbox.call("apply", page_range(page), |store, c| {
            c.page.apply(store, page, docs)
        })?;
        let changes = res.map_err(|e| self.guest_error(e))?;
        if changes.len() != docs.len() {
            return Err(self.bad_result(format!(
                "apply returned {} results for {} documents",
                changes.len(),
                docs.len()
            )));
        }
        let mut total = 0usize;
        for (change, doc) in changes.iter().zip(docs) {
            if let DocChange::Put(body) = change {
                self.check_body(&doc.id, body)?;
                total += body.len();
            }
        }
        let max = self.sandbox.limits().max_result_bytes;
        if total > max {
            return Err(self.bad_result(format!(
                "apply returned {total} bytes of documents for one page; the limit is {max}"
            )));
        }
        Ok(changes)
    }

    fn check_body(&self, id: &str, body: &str) -> Result<(), RuntimeError> {
        let max = self.sandbox.limits().max_doc_bytes;
        if body.len() > max {
            return Err(self.bad_result(format!(
                "document {id:?} is {} bytes; the limit is {max}",
                body.len(),
            )));
        }
        serde_json::from_str::<IgnoredAny>(body)
            .map(|_| ())
            .map_err(|e| self.bad_result(format!("document {id:?} is not valid JSON: {e}")))
    }

    fn guest_error(&self, e: GuestFailure) -> RuntimeError {
        let seq = e.event_sequence();
        self.sandbox.guest_error(e.message, seq)
    }

    fn bad_result(&self, message: String) -> RuntimeError {
        self.sandbox.guest_error(
            format!("{}: {message}", super::Limit::Result.phrase()),
            None,
        )
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
