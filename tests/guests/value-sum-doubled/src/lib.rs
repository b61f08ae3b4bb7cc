//! `value-sum` v1, a bad build: every value counts twice, so the documents it
//! writes are wrong (a hotfix back to `value-sum` and a rebuild repair them).

use serde::Deserialize;

#[path = "../../value-sum/src/sum.rs"]
mod sum;
pub use sum::Sum;

/// The events it reads.
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub enum Event {
    ValueAdded { value: i64 },
}

value_sum!(Event, |Event::ValueAdded { value }| 2 * *value);
