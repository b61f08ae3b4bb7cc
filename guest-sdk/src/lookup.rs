//! Lookups: a projection reading its own documents while it routes events
//! ([`Projection::LOOKUPS`](crate::Projection::LOOKUPS), WIT 1.2.0). Call [`lookup`]
//! from [`doc_refs`](crate::Projection::doc_refs) (or `doc_id`, `doc_ids`,
//! `fan_out`): it answers with the document as every event before the one being
//! routed left it. (A lookup reads the documents as they were before the page; a
//! page that looks up a document it also writes is projected again in halves, down
//! to single events, so the answer never depends on where pages end.)
//!
//! The daemon answers through its `host.lookup` import; natively,
//! [`testing::project`](crate::testing::project) answers from the documents it
//! folded so far, and narrows pages as the daemon does.

use std::cell::RefCell;

use serde::de::DeserializeOwned;

use crate::projection::DocRef;

/// Where lookups are answered: the documents of `DocRef`s (JSON text), one per
/// key, or the host's refusal.
pub(crate) type Source = Box<dyn FnMut(&[DocRef]) -> Result<Vec<Option<String>>, String>>;

thread_local! {
    static SOURCE: RefCell<Option<Source>> = const { RefCell::new(None) };
    /// The first failure of a lookup since routing the current event began.
    static FAILED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The document `doc` of this projection as it was before the page, decoded as
/// `T` (the projection's `Doc`, or any type its JSON fits); `None` if it does not
/// exist. A failure (the projection does not declare `LOOKUPS`, a budget, a
/// document that does not decode) fails the event being routed, naming it.
pub fn lookup<T: DeserializeOwned>(doc: &DocRef) -> Option<T> {
    let answer = SOURCE.with(|s| match s.borrow_mut().as_mut() {
        Some(source) => source(std::slice::from_ref(doc)),
        None => Err(
            "lookup needs `const LOOKUPS: bool = true;` and a host of WIT 1.2.0 \
                     (`export_projection!(P)`)"
                .to_owned(),
        ),
    });
    let json = match answer.map(|mut docs| docs.pop().flatten()) {
        Ok(json) => json?,
        Err(e) => return fail(e),
    };
    match serde_json::from_str(&json) {
        Ok(value) => Some(value),
        Err(e) => fail(format!(
            "lookup of document \"{doc}\": it does not decode: {e}"
        )),
    }
}

fn fail<T>(message: String) -> Option<T> {
    FAILED.with(|f| f.borrow_mut().get_or_insert(message).clone());
    None
}

/// Runs `f` with lookups answered by `source`.
pub(crate) fn with_source<R>(source: Source, f: impl FnOnce() -> R) -> R {
    let previous = SOURCE.with(|s| s.borrow_mut().replace(source));
    let out = f();
    SOURCE.with(|s| *s.borrow_mut() = previous);
    out
}

/// The failure of a lookup since the last call, if any (and forgets it).
pub(crate) fn take_failure() -> Option<String> {
    FAILED.with(|f| f.borrow_mut().take())
}
