//! Runs a projection natively, page by page as the daemon does, for tests.
//!
//! ```
//! # use refract_guest::{Envelope, Projection};
//! # use serde::{Deserialize, Serialize};
//! # use serde_json::json;
//! # #[derive(Deserialize)]
//! # enum CounterEvent { Incremented { by: u64 } }
//! # struct Counter;
//! # impl Projection for Counter {
//! #     type Event = CounterEvent;
//! #     type Doc = u64;
//! #     const NAME: &'static str = "counter";
//! #     const VERSION: u32 = 1;
//! #     fn create(_: &str, e: &Envelope<CounterEvent>) -> Option<u64> {
//! #         let CounterEvent::Incremented { by } = e.event;
//! #         Some(by)
//! #     }
//! #     fn apply(doc: &mut u64, e: &Envelope<CounterEvent>) {
//! #         let CounterEvent::Incremented { by } = e.event;
//! #         *doc += by;
//! #     }
//! # }
//! use refract_guest::testing::given;
//!
//! let events = given()
//!     .event("c-1", "Incremented", json!({ "by": 2 }))
//!     .event("c-1", "Reset", json!({}))
//!     .event("c-1", "Incremented", json!({ "by": 3 }));
//! assert_eq!(events.doc::<Counter>("c-1"), Some(json!(5)));
//! assert_eq!(events.events()[2].stream_version, 3);
//! ```

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::rc::Rc;

use serde_json::Value;

use crate::engine::{apply, describe, slice};
use crate::projection::{DocRef, Projection};
use crate::types::{DocChange, DocEvents, Event, GuestError};

/// How many events the harness hands the projection at a time.
pub const PAGE_SIZE: usize = 500;

/// The timestamp of the events [`Given`] makes: the event's sequence is added to it.
pub const BASE_TIMESTAMP: i64 = 1_700_000_000_000_000;

/// Projects `events` as the daemon would and returns every document of the default
/// collection by id (see [`project_all`] for the named collections too).
///
/// Only the event types `P` handles are handed to it, in pages of [`PAGE_SIZE`] (or
/// of `P`'s smaller [`MAX_PAGE_SIZE`](Projection::MAX_PAGE_SIZE)); each page is
/// sliced, then applied, and documents travel as JSON text between pages.
pub fn project<P: Projection>(events: &[Event]) -> Result<BTreeMap<String, Value>, GuestError> {
    Ok(project_all::<P>(events)?
        .into_iter()
        .filter(|(doc, _)| doc.collection.is_none())
        .map(|(doc, body)| (doc.id, body))
        .collect())
}

/// Projects `events` as [`project`] does and returns every document of every
/// collection, by collection and id.
pub fn project_all<P: Projection>(events: &[Event]) -> Result<BTreeMap<DocRef, Value>, GuestError> {
    project_all_in_pages::<P>(events, PAGE_SIZE)
}

/// Projects `events` as [`project_all`] does, in pages of at most `page_size`
/// events (at least 1): page boundaries matter to a projection with
/// [`LOOKUPS`](Projection::LOOKUPS), whose lookups see the documents before the page.
pub fn project_all_in_pages<P: Projection>(
    events: &[Event],
    page_size: usize,
) -> Result<BTreeMap<DocRef, Value>, GuestError> {
    let handled = describe::<P>().event_types;
    let relevant: Vec<&Event> = events
        .iter()
        .filter(|e| handled.contains(&e.event_type))
        .collect();
    // Shared with the lookup source: lookups see the documents before each page.
    let folded: Rc<RefCell<BTreeMap<DocRef, String>>> = Rc::default();
    let looked_up: Rc<RefCell<HashSet<DocRef>>> = Rc::default();
    let page_size = P::MAX_PAGE_SIZE.map_or(page_size, |max| page_size.min(max as usize));
    let page_size = page_size.max(1);
    let mut pages: VecDeque<Vec<Event>> = relevant
        .chunks(page_size)
        .map(|chunk| chunk.iter().map(|e| (*e).clone()).collect())
        .collect();
    while let Some(page) = pages.pop_front() {
        crate::engine::check_per_stream::<P>(&page)?;
        looked_up.borrow_mut().clear();
        let slices = with_lookups::<P, _>(&folded, &looked_up, || slice::<P>(&page))?;
        let keys: Vec<DocRef> = slices
            .iter()
            .map(|s| DocRef {
                collection: s.collection.clone(),
                id: s.doc_id.clone(),
            })
            .collect();
        // As the daemon does: a page that looked up a document it writes is
        // narrowed, so every lookup sees every event before it.
        let narrow =
            |looked: &HashSet<DocRef>| page.len() > 1 && keys.iter().any(|k| looked.contains(k));
        if narrow(&looked_up.borrow()) {
            split(&mut pages, page);
            continue;
        }
        let docs = folded.borrow();
        let mut inputs = Vec::with_capacity(slices.len());
        for (s, key) in slices.into_iter().zip(&keys) {
            let events = s
                .events
                .iter()
                .map(|&i| {
                    page.get(i as usize).cloned().ok_or_else(|| {
                        GuestError::new(format!("slice index {i} is outside the page"), None)
                    })
                })
                .collect::<Result<_, _>>()?;
            inputs.push(DocEvents {
                collection: s.collection,
                doc_id: s.doc_id,
                state: docs.get(key).cloned(),
                events,
            });
        }
        drop(docs);
        let changes = with_lookups::<P, _>(&folded, &looked_up, || apply::<P>(inputs))?;
        if narrow(&looked_up.borrow()) {
            split(&mut pages, page);
            continue;
        }
        let mut docs = folded.borrow_mut();
        for (key, change) in keys.into_iter().zip(changes) {
            match change {
                DocChange::Put(json) => {
                    docs.insert(key, json);
                }
                DocChange::Delete => {
                    docs.remove(&key);
                }
                DocChange::Keep => {}
            }
        }
    }
    let docs = folded.take();
    docs.into_iter()
        .map(|(doc, json)| match serde_json::from_str(&json) {
            Ok(body) => Ok((doc, body)),
            Err(e) => Err(GuestError::new(
                format!("document \"{doc}\" is not JSON: {e}"),
                None,
            )),
        })
        .collect()
}

/// Runs `f` with `P`'s lookups answered from `docs`, noting what they looked up in
/// `looked_up` (a projection declaring `LOOKUPS`; for another, a lookup fails saying
/// it must declare them).
fn with_lookups<P: Projection, R>(
    docs: &Rc<RefCell<BTreeMap<DocRef, String>>>,
    looked_up: &Rc<RefCell<HashSet<DocRef>>>,
    f: impl FnOnce() -> R,
) -> R {
    if !P::LOOKUPS {
        return f();
    }
    let (docs, looked_up) = (docs.clone(), looked_up.clone());
    let source: crate::lookup::Source = Box::new(move |keys| {
        looked_up.borrow_mut().extend(keys.iter().cloned());
        let docs = docs.borrow();
        Ok(keys.iter().map(|k| docs.get(k).cloned()).collect())
    });
    crate::lookup::with_source(source, f)
}

/// Puts the two halves of `page` first in line, in order.
fn split(pages: &mut VecDeque<Vec<Event>>, mut page: Vec<Event>) {
    let second = page.split_off(page.len() / 2);
    pages.push_front(second);
    pages.push_front(page);
}

/// Starts a list of events for a test.
#[must_use]
pub fn given() -> Given {
    Given::default()
}

/// A list of events for a test, numbered as a store would number them.
#[derive(Debug, Clone, Default)]
pub struct Given {
    events: Vec<Event>,
    versions: HashMap<String, u64>,
}

impl Given {
    /// An empty list.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an event with the next sequence and the next version of its stream.
    #[must_use]
    pub fn event(self, stream_id: &str, event_type: &str, data: Value) -> Self {
        self.event_with(stream_id, event_type, data, |_| {})
    }

    /// Appends an event as [`Given::event`] does, then lets `edit` change it (metadata, tenant...).
    #[must_use]
    pub fn event_with(
        mut self,
        stream_id: &str,
        event_type: &str,
        data: Value,
        edit: impl FnOnce(&mut Event),
    ) -> Self {
        let version = self.versions.entry(stream_id.to_owned()).or_insert(0);
        *version += 1;
        let sequence = self.events.len() as u64 + 1;
        let mut event = Event {
            sequence,
            stream_id: stream_id.to_owned(),
            stream_version: *version,
            event_type: event_type.to_owned(),
            data: data.to_string(),
            metadata: "{}".to_owned(),
            tenant: None,
            timestamp: BASE_TIMESTAMP + sequence as i64,
        };
        edit(&mut event);
        self.events.push(event);
        self
    }

    /// The events so far.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The events, to hand elsewhere.
    pub fn into_events(self) -> Vec<Event> {
        self.events
    }

    /// Projects the events with `P`: see [`project`].
    pub fn project<P: Projection>(&self) -> Result<BTreeMap<String, Value>, GuestError> {
        project::<P>(&self.events)
    }

    /// Every document `P` makes of the events; panics with the guest's error if it fails.
    pub fn docs<P: Projection>(&self) -> BTreeMap<String, Value> {
        match self.project::<P>() {
            Ok(docs) => docs,
            Err(e) => panic!("projection {} failed: {e}", P::NAME),
        }
    }

    /// The document `id` that `P` makes of the events; panics if the projection fails.
    pub fn doc<P: Projection>(&self, id: &str) -> Option<Value> {
        self.docs::<P>().remove(id)
    }

    /// The document `id` of `collection` that `P` makes of the events; panics if the
    /// projection fails.
    pub fn doc_in<P: Projection>(&self, collection: &str, id: &str) -> Option<Value> {
        match project_all::<P>(&self.events) {
            Ok(mut docs) => docs.remove(&DocRef::in_collection(collection, id)),
            Err(e) => panic!("projection {} failed: {e}", P::NAME),
        }
    }
}

/// A small deterministic random number generator (xorshift64) for generating test
/// workloads: the same seed gives the same events on every machine, with no
/// dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (any value, zero included).
    pub fn new(seed: u64) -> Self {
        // Spread small seeds over the state; the state must never be zero.
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n`; 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        match n {
            0 => 0,
            n => (self.next_u64() % n as u64) as usize,
        }
    }
}
