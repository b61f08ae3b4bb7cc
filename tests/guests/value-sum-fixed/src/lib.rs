//! `value-sum` v1, fixed: a value may also be written as a word ("three"), so the
//! event that poisoned the first build projects with this one.

use refract_guest::{Envelope, Projection};
use serde::{Deserialize, Serialize};

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

/// A stream's sum (the same document as the first build's).
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
        doc.sum += value.get();
        doc.count += 1;
    }
}

refract_guest::export_projection!(ValueSum);
