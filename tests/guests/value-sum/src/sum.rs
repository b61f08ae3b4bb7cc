//! What both builds of `value-sum` share: the document, and the projection around
//! how each build reads a value (included by both with `#[path]`).

use serde::{Deserialize, Serialize};

/// A stream's sum.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sum {
    /// Sum of the values.
    pub sum: i64,
    /// Events added.
    pub count: u64,
}

/// Declares `ValueSum` (name `value-sum`, version 1) over `$event`, reading each
/// event's value with `$value`, and exports it.
#[macro_export]
macro_rules! value_sum {
    ($event:ty, $value:expr) => {
        /// The projection.
        pub struct ValueSum;

        impl refract_guest::Projection for ValueSum {
            type Event = $event;
            type Doc = Sum;
            const NAME: &'static str = "value-sum";
            const VERSION: u32 = 1;

            fn create(_id: &str, event: &refract_guest::Envelope<$event>) -> Option<Sum> {
                let mut doc = Sum::default();
                Self::apply(&mut doc, event);
                Some(doc)
            }

            fn apply(doc: &mut Sum, event: &refract_guest::Envelope<$event>) {
                let read: fn(&$event) -> i64 = $value;
                doc.sum += read(&event.event);
                doc.count += 1;
            }
        }

        refract_guest::export_projection!(ValueSum);
    };
}
