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

use super::calls::{GuestFailure, PageCalls, SLICE_RECORD_BYTES};
use super::error::{Limit, RuntimeError};
use super::limits::{DEFAULT_PAGE_SIZE, Limits};
use super::loaded::LoadedComponent;
use super::sandbox::{Sandbox, Sandboxed, Spot};
use super::slots::InstanceSlots;
use super::state::HostState;
use super::types::{DESCRIBE_FUEL, Descriptor, DocChange, DocInput, Slice, slice_by_stream};
use super::versions::{Projector, ProjectorPre};
use crate::event::Event;
use crate::identity::doc_key::{MAX_COLLECTION_LEN, show_key, split_key};
use crate::identity::{MAX_STREAM_ID_LEN, preview};

/// An instantiated component with its sandbox.
pub struct Guest {
    sandbox: Sandbox<Calls>,
    /// The guest keeps one document per stream: pages are sliced on the host.
    per_stream: bool,
    /// The named collections it declared: a slice naming another is refused.
    collections: Vec<String>,
    /// Where its `slice` looks documents up, if it declares lookups and its caller
    /// gave a source.
    lookup: Option<std::sync::Arc<dyn super::lookup::DocLookup>>,
    /// The keys its last page's calls looked up.
    looked_up: std::collections::HashSet<String>,
    /// The most events the guest takes in one call (its max-page-size).
    max_events: usize,
    /// The configured events per page, which the caps on what `slice` names scale
    /// with (or the page's own length, if larger).
    page_size: usize,
}

/// Documents (and event indices) a page's `slice` may name per event of the page
/// size, unless the limits allow more documents (`max_docs_per_page`).
pub const DOCS_PER_EVENT: usize = 10;

/// Bytes the host takes from one guest call beyond what a valid result can need:
/// room for a guest's own error message (cut to 4 KiB once lifted).
const MESSAGE_ROOM: usize = 16 << 20;

impl Sandboxed for Guest {
    type Bindings = Calls;

    fn sandbox_mut(&mut self) -> &mut Sandbox<Calls> {
        &mut self.sandbox
    }
}

/// What an instance offers: the typed bindings (for `describe`) and the page calls.
pub(crate) struct Calls {
    bindings: Projector,
    page: PageCalls,
}

impl Guest {
    /// A guest for `loaded`, reported as `component` in logs and errors.
    pub fn new(loaded: &LoadedComponent, component: String) -> Self {
        let d = &loaded.descriptor;
        let mut guest = Self {
            per_stream: d.per_stream(),
            collections: d.collections.clone(),
            lookup: None,
            looked_up: Default::default(),
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

    /// The same guest, what its `slice` may name capped for pages of `page_size`
    /// events (see [`slice_caps`]).
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size;
        self
    }

    /// A guest whose descriptor is not known yet: for `describe` on load.
    pub(crate) fn for_describe(pre: &ProjectorPre, limits: &Limits, component: String) -> Self {
        let linked = pre.clone();
        let make = move |store: &mut Store<HostState>, instance: &Instance| {
            let bindings = linked.bindings(store, instance)?;
            let page = PageCalls::lookup(store, instance, linked.version())?;
            Ok(Calls { bindings, page })
        };
        Self {
            sandbox: Sandbox::new(pre.instance_pre().clone(), component, limits.clone(), make),
            per_stream: false,
            collections: Vec::new(),
            lookup: None,
            looked_up: Default::default(),
            max_events: usize::MAX,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }

    /// Whether the host groups its pages by stream itself (one document per
    /// stream, named by the stream id).
    pub fn per_stream(&self) -> bool {
        self.per_stream
    }

    /// The keys its last page's `slice` and `apply` looked up (taken).
    pub fn take_looked_up(&mut self) -> std::collections::HashSet<String> {
        std::mem::take(&mut self.looked_up)
    }

    /// Answers its `slice`'s lookups from `source` (its version's documents as they
    /// were before the page): only for a component declaring lookups.
    pub fn set_lookup(&mut self, source: Option<std::sync::Arc<dyn super::lookup::DocLookup>>) {
        self.lookup = source;
    }

    /// Lowers (or raises) the deadline of its next calls: an inline projection's
    /// calls share one CPU budget per append.
    pub fn set_call_timeout(&mut self, timeout: std::time::Duration) {
        self.sandbox.set_call_timeout(timeout);
    }

    /// The limits its calls run under.
    pub fn limits(&self) -> &Limits {
        self.sandbox.limits()
    }

    /// Asks the component what it is, converted into the latest WIT version's terms.
    pub fn describe(&mut self) -> Result<Descriptor, RuntimeError> {
        self.sandbox.call("describe", None, |store, c| {
            store.set_hostcall_fuel(DESCRIBE_FUEL);
            c.bindings.describe(store)
        })
    }

    /// Which documents each event of the page touches, validated. Pages are at most
    /// the guest's [`Descriptor::page_size`]: a 1.1.0 guest may refuse larger ones.
    pub fn slice(&mut self, page: &[Event]) -> Result<Vec<Slice>, RuntimeError> {
        if self.per_stream {
            // Same answer as the guest's, without lowering the page into it.
            return Ok(slice_by_stream(page));
        }
        self.slice_in_guest(page)
    }

    /// Asks the guest itself which documents each event touches, even when it
    /// declares per-stream documents (for tests and diagnostics), validated.
    pub fn slice_in_guest(&mut self, page: &[Event]) -> Result<Vec<Slice>, RuntimeError> {
        let (max_docs, max_indices) = slice_caps(self.sandbox.limits(), self.page_size, page.len());
        // What a valid answer can take (each document's id at its longest), so that
        // wasmtime refuses a bigger one before the host allocates it.
        let fuel = max_docs
            .saturating_mul(SLICE_RECORD_BYTES + MAX_STREAM_ID_LEN + MAX_COLLECTION_LEN)
            .saturating_add(max_indices.saturating_mul(4))
            .saturating_add(MESSAGE_ROOM);
        let lookups = self.lookup.clone().map(super::lookup::Lookups::new);
        let mut ended = None;
        let res = self.sandbox.call("slice", Spot::of(page), |store, c| {
            store.set_hostcall_fuel(fuel);
            store.data_mut().lookups = lookups;
            let out = c.page.slice(&mut *store, page);
            ended = store.data_mut().lookups.take();
            out
        });
        self.looked_up = after_lookups(ended)?;
        let slices = res?.map_err(|e| self.guest_error(e))?;
        if slices.len() > max_docs {
            return Err(self.bad_result(format!(
                "slice named {} documents for a page of {} events; the limit is {max_docs} \
                 per page (max_docs_per_page)",
                slices.len(),
                page.len()
            )));
        }
        let indices: usize = slices.iter().map(|s| s.events.len()).sum();
        if indices > max_indices {
            return Err(self.bad_result(format!(
                "slice named {indices} event indices for a page of {} events; the limit is \
                 {max_indices} per page",
                page.len()
            )));
        }
        let mut seen = HashSet::with_capacity(slices.len());
        for s in &slices {
            check_doc_key(&s.doc_id, &self.collections)
                .map_err(|m| self.bad_result(format!("slice: {m}")))?;
            if !seen.insert(s.doc_id.as_str()) {
                return Err(self.bad_result(format!(
                    "slice: document {} listed twice",
                    show_key(&s.doc_id)
                )));
            }
            check_indices(&s.events, page.len()).map_err(|m| {
                self.bad_result(format!("slice: document {}: {m}", show_key(&s.doc_id)))
            })?;
        }
        Ok(slices)
    }

    /// The new state of each document, one change per input, validated; `page` is
    /// the page the documents' event indices point into.
    pub fn apply(
        &mut self,
        page: &[Event],
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
    fn apply_in_parts(&mut self, page: &[Event], doc: DocInput) -> Result<DocChange, RuntimeError> {
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
        page: &[Event],
        docs: &[DocInput],
    ) -> Result<Vec<DocChange>, RuntimeError> {
        // Documents up to the result limit, each change's own size, and room for an
        // error: wasmtime refuses more before the host allocates it.
        let fuel = self
            .sandbox
            .limits()
            .max_result_bytes
            .saturating_add(docs.len().saturating_mul(std::mem::size_of::<DocChange>()))
            .saturating_add(MESSAGE_ROOM);
        // Routing is asked again in `apply` (fan-out children): the same lookups.
        let lookups = self.lookup.clone().map(super::lookup::Lookups::new);
        let mut ended = None;
        let res = self.sandbox.call("apply", Spot::of(page), |store, c| {
            store.set_hostcall_fuel(fuel);
            store.data_mut().lookups = lookups;
            let out = c.page.apply(&mut *store, page, docs);
            ended = store.data_mut().lookups.take();
            out
        });
        self.looked_up.extend(after_lookups(ended)?);
        let changes = res?.map_err(|e| self.guest_error(e))?;
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
                self.check_body(&show_key(&doc.id), body)?;
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
                "document {id} is {} bytes; the limit is {max}",
                body.len(),
            )));
        }
        serde_json::from_str::<IgnoredAny>(body)
            .map(|_| ())
            .map_err(|e| self.bad_result(format!("document {id} is not valid JSON: {e}")))
    }

    fn guest_error(&self, e: GuestFailure) -> RuntimeError {
        let seq = e.event_sequence();
        self.sandbox.guest_error(e.message, seq)
    }

    fn bad_result(&self, message: String) -> RuntimeError {
        self.sandbox
            .guest_error(format!("{}: {message}", Limit::Result.phrase()), None)
    }
}

/// The keys a guest call looked up, or the host's error if the store failed under
/// one of its lookups: the page failed for the host's reason, whatever the guest
/// made of it (an error, or a trap).
fn after_lookups(
    ended: Option<super::lookup::Lookups>,
) -> Result<std::collections::HashSet<String>, RuntimeError> {
    match ended {
        Some(l) => match l.host_failure {
            Some(message) => Err(RuntimeError::Host(message)),
            None => Ok(l.looked_up),
        },
        None => Ok(Default::default()),
    }
}

/// A document's key from `slice`: its collection one the guest declared, its id
/// plain text.
fn check_doc_key(key: &str, collections: &[String]) -> Result<(), String> {
    let (collection, id) = split_key(key);
    if let Some(c) = collection
        && !collections.iter().any(|d| d == c)
    {
        return Err(format!(
            "document {} is in collection {}, which the component does not declare \
             (describe-collections: {collections:?})",
            preview(id),
            preview(c)
        ));
    }
    check_doc_id(id)
}

fn check_doc_id(id: &str) -> Result<(), String> {
    if !crate::identity::is_text(id, MAX_STREAM_ID_LEN) {
        return Err(format!(
            "document id {} ({} bytes) must be 1 to {MAX_STREAM_ID_LEN} bytes without control \
             characters",
            preview(id),
            id.len()
        ));
    }
    Ok(())
}

/// A document's event indices must be strictly increasing (page order, no repeats)
/// and inside the page, so there are never more of them than the page's events.
fn check_indices(events: &[u32], page_len: usize) -> Result<(), String> {
    if let Some(w) = events.windows(2).find(|w| w[0] >= w[1]) {
        return Err(format!(
            "event index {} follows {}: indices must be strictly increasing",
            w[1], w[0]
        ));
    }
    match events.last() {
        Some(&i) if i as usize >= page_len => Err(format!(
            "event index {i} is outside the page of {page_len} events"
        )),
        _ => Ok(()),
    }
}

/// The documents and the event indices a page of `page_len` events may name: the
/// limits' `max_docs_per_page` documents, or [`DOCS_PER_EVENT`] per event of the
/// configured `page_size` (or of the page, if it is larger, as a consistent read's
/// is); event indices as many as that, and at least [`DOCS_PER_EVENT`] per event.
fn slice_caps(limits: &Limits, page_size: usize, page_len: usize) -> (usize, usize) {
    let per_page = DOCS_PER_EVENT.saturating_mul(page_size.max(page_len).max(1));
    let docs = limits.max_docs_per_page.unwrap_or(per_page).max(1);
    (docs, docs.max(per_page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_indices_must_be_strictly_increasing_and_inside_the_page() {
        assert_eq!(check_indices(&[], 3), Ok(()));
        assert_eq!(check_indices(&[0, 1, 2], 3), Ok(()));
        assert_eq!(
            check_indices(&[0, 0], 3),
            Err("event index 0 follows 0: indices must be strictly increasing".into())
        );
        assert_eq!(
            check_indices(&[2, 1], 3),
            Err("event index 1 follows 2: indices must be strictly increasing".into())
        );
        assert_eq!(
            check_indices(&[1, 3], 3),
            Err("event index 3 is outside the page of 3 events".into())
        );
    }

    #[test]
    fn a_slice_may_name_only_collections_the_guest_declared() {
        use crate::identity::doc_key::doc_key;
        let declared = ["word".to_owned()];
        assert_eq!(
            check_doc_key(&doc_key(Some("word"), "all"), &declared),
            Ok(())
        );
        assert_eq!(check_doc_key("all", &[]), Ok(()));
        let e = check_doc_key(&doc_key(Some("words"), "all"), &declared).expect_err("undeclared");
        assert!(
            e.contains("collection \"words\", which the component does not declare"),
            "{e}"
        );
        // A guest of an older version declares none: an id spelling a key is refused.
        let e = check_doc_key("\u{1f}word\u{1f}all", &[]).expect_err("spelled key");
        assert!(e.contains("does not declare"), "{e}");
        // The id within the collection is checked as any id.
        let e = check_doc_key(&doc_key(Some("word"), ""), &declared).expect_err("empty id");
        assert!(e.contains("must be 1 to 256 bytes"), "{e}");
    }

    #[test]
    fn documents_per_page_default_to_ten_per_event_of_the_page_size() {
        let mut limits = Limits::default();
        assert_eq!(slice_caps(&limits, 5000, 3), (50_000, 50_000));
        assert_eq!(slice_caps(&limits, 0, 0), (DOCS_PER_EVENT, DOCS_PER_EVENT));
        // A page longer than the configured size (a consistent read's) scales them.
        assert_eq!(slice_caps(&limits, 3, 15), (150, 150));
        limits.max_docs_per_page = Some(7);
        assert_eq!(slice_caps(&limits, 5000, 3), (7, 50_000));
        limits.max_docs_per_page = Some(80_000);
        assert_eq!(slice_caps(&limits, 5000, 3), (80_000, 80_000));
        let parsed: Limits = toml::from_str("max_docs_per_page = 12").expect("limits");
        assert_eq!(parsed.max_docs_per_page, Some(12));
    }

    #[test]
    fn a_long_document_id_is_quoted_only_in_part() {
        let id = "x".repeat(1 << 20);
        let message = check_doc_id(&id).expect_err("too long");
        assert!(message.len() < 300, "{message}");
        assert!(message.contains("(1048576 bytes)"), "{message}");
    }
}
