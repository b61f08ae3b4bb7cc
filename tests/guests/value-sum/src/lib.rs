//! `value-sum` v1: one document per stream with the sum of its `ValueAdded` values.
//! A value that is not a number does not decode: the event fails (a poison event).

use serde::Deserialize;

mod sum;
pub use sum::Sum;

/// The events it reads.
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub enum Event {
    ValueAdded { value: i64 },
}

value_sum!(Event, |Event::ValueAdded { value }| *value);
