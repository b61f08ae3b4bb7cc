//! `live-sum`: a live projection. Its documents are never stored: each read folds
//! the stream's `ValueAdded` values through the component.

use refract_guest::{Envelope, Lifecycle, Projection};
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
pub struct LiveSum;

impl Projection for LiveSum {
    type Event = Event;
    type Doc = Sum;
    const NAME: &'static str = "live-sum";
    const VERSION: u32 = 1;
    const LIFECYCLE: Lifecycle = Lifecycle::Live;

    fn create(_id: &str, event: &Envelope<Event>) -> Option<Sum> {
        let mut doc = Sum::default();
        Self::apply(&mut doc, event);
        Some(doc)
    }

    fn apply(doc: &mut Sum, event: &Envelope<Event>) {
        let Event::ValueAdded { value } = event.event;
        doc.sum += value;
        doc.count += 1;
    }
}

refract_guest::export_projection!(LiveSum);
