//! `value-sum` v1: one document per stream with the sum of its `ValueAdded` values.
//! A value that is not a number does not decode: the event fails (a poison event).

use refract_guest::{Envelope, Projection};
use serde::{Deserialize, Serialize};

/// The events it reads.
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub enum Event {
    ValueAdded { value: i64 },
}

/// A stream's sum.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sum {
    /// Sum of the values.
    pub sum: i64,
    /// Events added.
    pub count: u64,
}

/// The projection.
pub struct ValueSum;

impl Projection for ValueSum {
    type Event = Event;
    type Doc = Sum;
    const NAME: &'static str = "value-sum";
    const VERSION: u32 = 1;

    fn create(_id: &str, event: &Envelope<Event>) -> Option<Sum> {
        let mut doc = Sum::default();
        Self::apply(&mut doc, event);
        Some(doc)
    }

    fn apply(doc: &mut Sum, event: &Envelope<Event>) {
        let Event::ValueAdded { value } = &event.event;
        doc.sum += value;
        doc.count += 1;
    }
}

refract_guest::export_projection!(ValueSum);
