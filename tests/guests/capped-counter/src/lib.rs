//! `capped-counter`: a WIT 1.1.0 guest that declares a small `MAX_PAGE_SIZE` and
//! custom documents, so tests see the host honour both. One document per event type
//! counts the ticket events of that type across all streams.
//!
//! The SDK refuses a call that brings more events than `MAX_PAGE_SIZE` with an
//! error, which pauses the projection: a host that ignored the limit would show.

use refract_guest::{Documents, Envelope, Projection};
use serde::{Deserialize, Serialize};

/// Events per call this guest takes: small, so a test's few dozen events make pages.
pub const MAX_EVENTS: u32 = 7;

/// The ticket events counted; their payloads are not read.
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub enum Ticket {
    TicketOpened {},
    TicketCommented {},
    TicketClosed {},
}

/// How many events of one type there are.
#[derive(Debug, Serialize, Deserialize)]
pub struct TypeCount {
    /// The event type.
    pub event_type: String,
    /// Events of that type counted.
    pub count: u64,
    /// The sequence of the last one.
    pub last_sequence: u64,
}

/// The projection.
pub struct CappedCounter;

impl Projection for CappedCounter {
    type Event = Ticket;
    type Doc = TypeCount;
    const NAME: &'static str = "capped-counter";
    const VERSION: u32 = 1;
    const DOCUMENTS: Documents = Documents::Custom;
    const MAX_PAGE_SIZE: Option<u32> = Some(MAX_EVENTS);

    fn doc_ids(event: &Envelope<Ticket>) -> Vec<String> {
        vec![event.event_type.clone()]
    }

    fn create(id: &str, event: &Envelope<Ticket>) -> Option<TypeCount> {
        refract_guest::log::info(&format!("counting type {id}"));
        let mut doc = TypeCount {
            event_type: id.to_owned(),
            count: 0,
            last_sequence: 0,
        };
        Self::apply(&mut doc, event);
        Some(doc)
    }

    fn apply(doc: &mut TypeCount, event: &Envelope<Ticket>) {
        // For the tests: the host's panic report names this event.
        assert!(event.stream_id != "panic", "told to panic by stream panic");
        doc.count += 1;
        doc.last_sequence = event.sequence;
    }
}

// Pinned to 1.1.0: the e2e tests run guests of every WIT version side by side.
refract_guest::export_projection!(CappedCounter, wit = "1.1.0");

#[cfg(test)]
mod tests {
    use refract_guest::testing::given;

    use super::*;

    #[test]
    fn counts_each_type_across_streams_in_small_pages() {
        let mut events = given();
        for n in 0..20 {
            let kind = ["TicketOpened", "TicketCommented"][n % 2];
            events = events.event(&format!("t-{}", n % 3), kind, serde_json::json!({}));
        }
        let docs = events.docs::<CappedCounter>();
        assert_eq!(docs["TicketOpened"]["count"], 10);
        assert_eq!(docs["TicketCommented"]["count"], 10);
        assert_eq!(docs["TicketCommented"]["last_sequence"], 20);
        let d = refract_guest::describe::<CappedCounter>();
        assert_eq!(d.max_page_size, Some(MAX_EVENTS));
    }
}
