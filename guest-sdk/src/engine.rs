//! The target-independent core: `describe`, `slice` and `apply` of a [`Projection`].
//!
//! The wasm export glue calls these; the host's tests and benchmarks call them natively.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use crate::decode;
use crate::projection::{DocRef, Documents, Envelope, Lifecycle, Projection};
use crate::types::{ComponentKind, Descriptor, DocChange, DocEvents, Event, GuestError, Slice};

thread_local! {
    /// The sequence of the event whose author code is running, for the panic hook.
    static CURRENT: Cell<Option<u64>> = const { Cell::new(None) };
}

/// The sequence of the event being processed on this thread, if any.
#[cfg(any(target_arch = "wasm32", test))]
pub(crate) fn current_sequence() -> Option<u64> {
    CURRENT.get()
}

/// Marks the event being processed; clears the mark when dropped (even by a panic).
struct Processing;

impl Processing {
    fn start() -> Self {
        CURRENT.set(None);
        Processing
    }

    fn at(&self, sequence: Option<u64>) {
        CURRENT.set(sequence);
    }
}

impl Drop for Processing {
    fn drop(&mut self) {
        CURRENT.set(None);
    }
}

/// The event types `P` handles: the variant names of its event enum.
pub(crate) fn event_types<P: Projection>() -> &'static [&'static str] {
    decode::variants::<P::Event>()
}

/// The component's name, version, kind and handled event types.
pub fn describe<P: Projection>() -> Descriptor {
    Descriptor {
        name: P::NAME.to_owned(),
        version: P::VERSION,
        kind: ComponentKind::Projection,
        event_types: event_types::<P>().iter().map(|t| (*t).to_owned()).collect(),
        // Per-stream tells the host it may group pages by stream itself and skip `slice`.
        documents: P::DOCUMENTS,
        max_page_size: P::MAX_PAGE_SIZE,
        // Options, not WIT fields: hosts of every WIT version read them, and an
        // older host that does not know one goes on without it.
        options: lifecycle_option::<P>()
            .into_iter()
            .chain(P::LOOKUPS.then(|| ("lookups".to_owned(), "true".to_owned())))
            .collect(),
    }
}

/// The descriptor option naming `P`'s lifecycle, unless it is the default.
fn lifecycle_option<P: Projection>() -> Option<(String, String)> {
    let name = match P::LIFECYCLE {
        Lifecycle::Live => "live",
        Lifecycle::Inline => "inline",
        _ => return None,
    };
    Some(("lifecycle".to_owned(), name.to_owned()))
}

/// Fails if a call brings more events than `P`'s [`MAX_PAGE_SIZE`](Projection::MAX_PAGE_SIZE):
/// a host that honours it never does. `apply` counts each event once, however many
/// documents it touches.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn check_page_size<P: Projection>(
    events: impl Iterator<Item = u64>,
) -> Result<(), GuestError> {
    let Some(max) = P::MAX_PAGE_SIZE else {
        return Ok(());
    };
    let count = events.collect::<std::collections::BTreeSet<u64>>().len();
    if count > max as usize {
        return Err(GuestError::new(
            format!(
                "the host sent {count} events in one call; {} declares MAX_PAGE_SIZE {max}",
                P::NAME
            ),
            None,
        ));
    }
    Ok(())
}

/// Decodes an event's data as its variant of `E`, or says which event could not be.
fn decode_event<E: serde::de::DeserializeOwned>(event: &Event) -> Result<E, GuestError> {
    decode::decode(&event.event_type, &event.data).map_err(|e| {
        GuestError::new(
            format!(
                "cannot decode {} at sequence {}: {e}",
                event.event_type, event.sequence
            ),
            Some(event.sequence),
        )
    })
}

/// Groups a page by document id, in order of first appearance; indices in page order.
///
/// Events of types `P` does not handle are skipped. An event whose children
/// ([`Projection::fan_out`]) go to other documents is sliced into each of them.
pub fn slice<P: Projection>(page: &[Event]) -> Result<Vec<Slice>, GuestError> {
    let handled = event_types::<P>();
    let processing = Processing::start();
    let mut slices = Slices::default();
    for (i, event) in page.iter().enumerate() {
        if !handled.contains(&event.event_type.as_str()) {
            continue;
        }
        let index = u32::try_from(i)
            .map_err(|_| GuestError::new("the page has more than 2^32 events", None))?;
        match P::DOCUMENTS {
            Documents::PerStream => {
                slices.add(DocRef::new(event.stream_id.as_str()), index);
                continue;
            }
            Documents::PerTenant => {
                slices.add(DocRef::new(tenant_doc(event.tenant.as_deref())), index);
                continue;
            }
            Documents::Custom => {}
        }
        let envelope = Envelope::from_ref(decode_event::<P::Event>(event)?, event);
        processing.at(Some(event.sequence));
        crate::lookup::take_failure();
        let children = P::fan_out(&envelope);
        let docs: Vec<DocRef> = P::doc_refs(&envelope)
            .into_iter()
            .chain(
                children
                    .into_iter()
                    .flat_map(|child| P::doc_refs(&envelope.with(child))),
            )
            .collect();
        if let Some(e) = crate::lookup::take_failure() {
            return Err(GuestError::new(
                format!(
                    "{} could not route {} at sequence {}: {e}",
                    P::NAME,
                    event.event_type,
                    event.sequence
                ),
                Some(event.sequence),
            ));
        }
        for doc in docs {
            check_doc_ref::<P>(&doc, event)?;
            slices.add(doc, index);
        }
    }
    Ok(slices.list)
}

/// Longest document id the host accepts, in bytes.
pub const MAX_DOC_ID_BYTES: usize = 256;

/// Fails, naming the event, if `doc` is not a document the host accepts: its id 1
/// to [`MAX_DOC_ID_BYTES`] bytes without control characters, its collection one of
/// [`Projection::COLLECTIONS`]. Caught here, natively in tests too, instead of by
/// the host, which could not say which event named it.
fn check_doc_ref<P: Projection>(doc: &DocRef, event: &Event) -> Result<(), GuestError> {
    let id = &doc.id;
    let problem = if let Some(c) = doc.collection()
        && !P::COLLECTIONS.contains(&c)
    {
        format!(
            "is in collection {c:?}, which is not one of {}::COLLECTIONS {:?}",
            P::NAME,
            P::COLLECTIONS
        )
    } else if id.is_empty() {
        "is empty".to_owned()
    } else if id.len() > MAX_DOC_ID_BYTES {
        format!(
            "is {} bytes long; the limit is {MAX_DOC_ID_BYTES}",
            id.len()
        )
    } else if id.chars().any(char::is_control) {
        "contains a control character".to_owned()
    } else {
        return Ok(());
    };
    let shown: String = doc.to_string().chars().take(64).collect();
    Err(GuestError::new(
        format!(
            "{}::doc_refs names document {shown:?} for {} at sequence {}: it {problem}",
            P::NAME,
            event.event_type,
            event.sequence
        ),
        Some(event.sequence),
    ))
}

/// The document [`Documents::PerTenant`] folds an event of `tenant` into.
fn tenant_doc(tenant: Option<&str>) -> &str {
    tenant.unwrap_or(crate::projection::NO_TENANT)
}

/// Fails if `P` declares [`Documents::PerStream`] but its `doc_ids` names other
/// documents for one of these events: the host would never call `doc_ids`.
pub(crate) fn check_per_stream<P: Projection>(page: &[Event]) -> Result<(), GuestError> {
    if P::DOCUMENTS == Documents::Custom {
        return Ok(());
    }
    for event in page {
        let envelope = Envelope::from_ref(decode_event::<P::Event>(event)?, event);
        let ids = P::doc_refs(&envelope);
        if ids.len() != 1 || ids[0] != DocRef::new(event.stream_id.as_str()) {
            return Err(GuestError::new(
                format!(
                    "{}::doc_ids names {ids:?} for event {} of stream {:?}, but DOCUMENTS is \
                     Documents::{:?} so the host never calls doc_ids (or doc_refs): set \
                     `const DOCUMENTS: Documents = Documents::Custom;`",
                    P::NAME,
                    event.sequence,
                    event.stream_id,
                    P::DOCUMENTS,
                ),
                Some(event.sequence),
            ));
        }
    }
    Ok(())
}

/// Slices being built, with an index by document.
#[derive(Default)]
struct Slices {
    list: Vec<Slice>,
    by_id: BTreeMap<DocRef, usize>,
}

impl Slices {
    fn add(&mut self, doc: DocRef, index: u32) {
        match self.by_id.get(&doc) {
            Some(&at) => {
                let events = &mut self.list[at].events;
                // An event listing the same id twice is sliced once.
                if events.last() != Some(&index) {
                    events.push(index);
                }
            }
            None => {
                self.list.push(Slice {
                    collection: doc.collection.clone(),
                    doc_id: doc.id.clone(),
                    events: vec![index],
                });
                self.by_id.insert(doc, self.list.len() - 1);
            }
        }
    }
}

/// Brings each document up to date with its events: one change per input, in order.
///
/// A change is `Put` with the new JSON, `Delete`, or `Keep` when no event created or
/// changed the document. Events of types `P` does not handle are skipped.
pub fn apply<P: Projection>(docs: Vec<DocEvents>) -> Result<Vec<DocChange>, GuestError> {
    let handled = event_types::<P>();
    let processing = Processing::start();
    let mut shared = Shared::new(&docs);
    docs.into_iter()
        .map(|doc| apply_doc::<P>(doc, handled, &processing, &mut shared))
        .collect()
}

/// An event decoded once, with its children and where each goes.
struct Decoded<E> {
    envelope: Envelope<E>,
    /// Whether the parent goes to the document (`None`: to every one it is sent to).
    parent_ids: Option<Vec<DocRef>>,
    /// Its children ([`Projection::fan_out`]) with the documents each goes to.
    children: Vec<(Envelope<E>, Option<Vec<DocRef>>)>,
}

/// Events sent for several documents in one call (identities, fan-out), decoded
/// and routed once instead of once per document: a parent with `k` children
/// reaching `k` documents costs `k`, not `k` squared. Each is dropped after its
/// last use; events sent once are never held.
struct Shared<E> {
    uses: HashMap<u64, u32>,
    decoded: HashMap<u64, Rc<Decoded<E>>>,
}

impl<E> Shared<E> {
    fn new(docs: &[DocEvents]) -> Self {
        let mut uses: HashMap<u64, u32> = HashMap::new();
        for e in docs.iter().flat_map(|d| &d.events) {
            *uses.entry(e.sequence).or_default() += 1;
        }
        uses.retain(|_, n| *n > 1);
        Self {
            uses,
            decoded: HashMap::new(),
        }
    }
}

/// `event` decoded and routed, from `shared` when it was already.
fn decoded<P: Projection>(
    event: Event,
    shared: &mut Shared<P::Event>,
) -> Result<Rc<Decoded<P::Event>>, GuestError> {
    let sequence = event.sequence;
    let left = shared.uses.get_mut(&sequence).map(|n| {
        *n -= 1;
        *n
    });
    if let Some(d) = shared.decoded.get(&sequence) {
        let d = d.clone();
        if left == Some(0) {
            shared.decoded.remove(&sequence);
            shared.uses.remove(&sequence);
        }
        return Ok(d);
    }
    let envelope = Envelope::new(decode_event::<P::Event>(&event)?, event);
    crate::lookup::take_failure();
    let children = P::fan_out(&envelope);
    let routed = P::DOCUMENTS == Documents::Custom && !children.is_empty();
    let ids = |e: &Envelope<P::Event>| routed.then(|| P::doc_refs(e));
    let children = children
        .into_iter()
        .map(|c| {
            let child = envelope.with(c);
            let to = ids(&child);
            (child, to)
        })
        .collect();
    let parent_ids = ids(&envelope);
    if let Some(e) = crate::lookup::take_failure() {
        return Err(GuestError::new(
            format!(
                "{} could not route {} at sequence {}: {e}",
                P::NAME,
                envelope.event_type,
                envelope.sequence
            ),
            Some(envelope.sequence),
        ));
    }
    let d = Rc::new(Decoded {
        parent_ids,
        envelope,
        children,
    });
    if left.is_some_and(|n| n > 0) {
        shared.decoded.insert(sequence, d.clone());
    }
    Ok(d)
}

fn apply_doc<P: Projection>(
    doc: DocEvents,
    handled: &[&str],
    processing: &Processing,
    shared: &mut Shared<P::Event>,
) -> Result<DocChange, GuestError> {
    let DocEvents {
        collection,
        doc_id,
        state,
        events,
    } = doc;
    let doc = DocRef {
        collection,
        id: doc_id,
    };
    processing.at(None);
    let existed = state.is_some();
    let mut current: Option<P::Doc> = match state {
        Some(json) => Some(serde_json::from_str(&json).map_err(|e| {
            GuestError::new(format!("cannot decode document \"{doc}\": {e}"), None)
        })?),
        None => None,
    };
    let mut changed = false;
    // The host sent an event with children for this document because it or one of
    // its children goes here: fold only those that do.
    let here = |ids: &Option<Vec<DocRef>>| ids.as_ref().is_none_or(|ids| ids.contains(&doc));
    for event in events {
        if !handled.contains(&event.event_type.as_str()) {
            continue;
        }
        processing.at(Some(event.sequence));
        let d = decoded::<P>(event, shared)?;
        if d.children.is_empty() || here(&d.parent_ids) {
            changed |= fold::<P>(&doc, &mut current, &d.envelope);
        }
        for (child, to) in &d.children {
            if here(to) {
                changed |= fold::<P>(&doc, &mut current, child);
            }
        }
    }
    processing.at(None);
    Ok(match current {
        _ if !changed => DocChange::Keep,
        Some(body) => DocChange::Put(serde_json::to_string(&body).map_err(|e| {
            GuestError::new(format!("cannot encode document \"{doc}\": {e}"), None)
        })?),
        None if existed => DocChange::Delete,
        None => DocChange::Keep,
    })
}

/// Folds one event into the document (creating it if it can); whether it did.
fn fold<P: Projection>(
    doc_ref: &DocRef,
    current: &mut Option<P::Doc>,
    envelope: &Envelope<P::Event>,
) -> bool {
    match current.as_mut() {
        Some(doc) => P::apply(doc, envelope),
        None => match P::create_in(doc_ref, envelope) {
            Some(doc) => *current = Some(doc),
            None => return false,
        },
    }
    if current
        .as_ref()
        .is_some_and(|doc| P::should_delete(doc, envelope))
    {
        *current = None;
    }
    true
}

/// Marks the event whose author code runs outside a projection (a subscription's
/// `handle`), for the panic hook.
pub(crate) fn set_current_sequence(sequence: Option<u64>) {
    CURRENT.set(sequence);
}
