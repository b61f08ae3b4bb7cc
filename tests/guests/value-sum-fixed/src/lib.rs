//! `value-sum` v1, fixed: a value may also be written as a word ("three"), so the
//! event that poisoned the first build projects with this one.

use serde::Deserialize;

#[path = "../../value-sum/src/sum.rs"]
mod sum;
pub use sum::Sum;

/// A value as clients write it.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// A number.
    Number(i64),
    /// A number written as an English word, one to ten.
    Word(String),
}

impl Value {
    fn get(&self) -> i64 {
        const WORDS: [&str; 10] = [
            "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        ];
        match self {
            Value::Number(n) => *n,
            Value::Word(w) => WORDS
                .iter()
                .position(|x| x == w)
                .map_or(0, |i| i as i64 + 1),
        }
    }
}

/// The events it reads.
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub enum Event {
    ValueAdded { value: Value },
}

value_sum!(Event, |Event::ValueAdded { value }| value.get());
