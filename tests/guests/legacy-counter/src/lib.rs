//! `legacy-counter`: a guest exported for WIT `refract:projection@1.0.0`, as one
//! compiled before 1.1.0 was published would be. One document per stream counts the
//! stream's ticket events; the tests run it beside 1.1.0 guests in one daemon.

use refract_guest::{Envelope, Projection};
use serde::{Deserialize, Serialize};

/// A stream whose first event makes the guest panic, for the tests.
pub const PANIC_STREAM: &str = "panic";

/// The ticket events counted; their payloads are not read.
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub enum TicketEvent {
    TicketOpened {},
    TicketCommented {},
    TicketClosed {},
}

/// One stream's count.
#[derive(Debug, Serialize, Deserialize)]
pub struct StreamTally {
    /// The stream's id.
    pub stream: String,
    /// Events counted.
    pub events: u64,
    /// The stream version of the last event counted.
    pub last_version: u64,
}

/// The projection.
pub struct LegacyCounter;

impl Projection for LegacyCounter {
    type Event = TicketEvent;
    type Doc = StreamTally;
    const NAME: &'static str = "legacy-counter";
    const VERSION: u32 = 1;

    fn create(id: &str, event: &Envelope<TicketEvent>) -> Option<StreamTally> {
        // Through the host's log and its panic report: the tests look for both.
        refract_guest::log::info(&format!("counting stream {id}"));
        assert!(id != PANIC_STREAM, "told to panic by stream {id}");
        Some(StreamTally {
            stream: id.to_owned(),
            events: 1,
            last_version: event.stream_version,
        })
    }

    fn apply(tally: &mut StreamTally, event: &Envelope<TicketEvent>) {
        tally.events += 1;
        tally.last_version = event.stream_version;
    }
}

// What makes it a 1.0.0 guest: the descriptor says "per-stream" with the 1.0.0 option.
refract_guest::export_projection!(LegacyCounter, wit = "1.0.0");
