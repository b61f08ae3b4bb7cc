//! `stream-counter`: one document per help-desk stream counting its events by type.
//!
//! It reads no field of any event, so it keeps projecting whatever the payloads are;
//! the tests run it beside `incident-details` and the benchmarks use it to catch lost
//! or doubled events.

use std::collections::BTreeMap;

use refract_guest::{Envelope, Projection};
use serde::{Deserialize, Serialize};

/// The help-desk event types; their payloads are not read.
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub enum CountedEvent {
    IncidentLogged {},
    IncidentCategorised {},
    IncidentPrioritised {},
    AgentAssignedToIncident {},
    IncidentResolved {},
    ResolutionAcknowledgedByCustomer {},
    IncidentClosed {},
}

/// How many events one stream has, in all and by type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamCount {
    /// The stream's id.
    pub id: String,
    /// Events counted.
    pub total: u64,
    /// Events counted per type.
    pub by_type: BTreeMap<String, u64>,
    /// Sequence of the last event counted.
    pub last_sequence: u64,
}

/// The projection.
pub struct StreamCounter;

impl Projection for StreamCounter {
    type Event = CountedEvent;
    type Doc = StreamCount;
    const NAME: &'static str = "stream-counter";
    const VERSION: u32 = 1;

    fn create(id: &str, event: &Envelope<CountedEvent>) -> Option<StreamCount> {
        let mut doc = StreamCount {
            id: id.to_owned(),
            ..StreamCount::default()
        };
        Self::apply(&mut doc, event);
        Some(doc)
    }

    fn apply(doc: &mut StreamCount, event: &Envelope<CountedEvent>) {
        doc.total += 1;
        *doc.by_type.entry(event.event_type.clone()).or_default() += 1;
        doc.last_sequence = event.sequence;
    }
}

refract_guest::export_projection!(StreamCounter);

#[cfg(test)]
mod tests {
    use super::*;
    use refract_guest::Event;
    use serde_json::json;

    fn event(seq: u64, stream: &str, ty: &str, data: serde_json::Value) -> Event {
        Event {
            sequence: seq,
            stream_id: stream.into(),
            stream_version: seq,
            event_type: ty.into(),
            data: data.to_string(),
            metadata: "{}".into(),
            tenant: None,
            timestamp: 0,
        }
    }

    #[test]
    fn counts_every_event_whatever_its_payload() {
        let events = [
            event(1, "a", "IncidentLogged", json!({"anything": 1})),
            event(2, "a", "IncidentClosed", json!({})),
            event(3, "b", "IncidentLogged", json!({})),
            event(4, "a", "SomethingElse", json!({})),
        ];
        let docs = refract_guest::testing::project::<StreamCounter>(&events).expect("projects");
        assert_eq!(docs["a"]["total"], 2);
        assert_eq!(docs["a"]["by_type"]["IncidentClosed"], 1);
        assert_eq!(docs["a"]["last_sequence"], 2);
        assert_eq!(docs["b"]["total"], 1);
    }
}
