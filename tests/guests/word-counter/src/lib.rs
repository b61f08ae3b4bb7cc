//! `word-counter`: a guest whose documents are not its streams. Every
//! `TextWritten { text }` event, in any stream, counts each of its words in the
//! document whose id is the word, so the tests see reads that must ask the guest
//! which documents an event touches.
//!
//! The word `poison` makes `apply` panic, so a test can pause the projection on
//! purpose (only the document `poison` is affected).

use refract_guest::{Documents, Envelope, Projection};
use serde::{Deserialize, Serialize};

/// The events counted.
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub enum Text {
    TextWritten { text: String },
}

/// How often one word was written.
#[derive(Debug, Serialize, Deserialize)]
pub struct WordCount {
    /// The word (also the document's id).
    pub word: String,
    /// Occurrences so far.
    pub count: u64,
    /// The sequence of the last event that had it.
    pub last_sequence: u64,
}

/// The words of a text: split on whitespace, lowercased, without punctuation.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_lowercase)
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
}

/// The projection.
pub struct WordCounter;

impl Projection for WordCounter {
    type Event = Text;
    type Doc = WordCount;
    const NAME: &'static str = "word-counter";
    const VERSION: u32 = 1;
    const DOCUMENTS: Documents = Documents::Custom;

    fn doc_ids(event: &Envelope<Text>) -> Vec<String> {
        let Text::TextWritten { text } = &event.event;
        let mut ids: Vec<String> = words(text).collect();
        ids.sort();
        ids.dedup();
        ids
    }

    fn create(id: &str, event: &Envelope<Text>) -> Option<WordCount> {
        let mut doc = WordCount {
            word: id.to_owned(),
            count: 0,
            last_sequence: 0,
        };
        Self::apply(&mut doc, event);
        Some(doc)
    }

    fn apply(doc: &mut WordCount, event: &Envelope<Text>) {
        assert!(doc.word != "poison", "poisoned at {}", event.sequence);
        let Text::TextWritten { text } = &event.event;
        doc.count += words(text).filter(|w| *w == doc.word).count() as u64;
        doc.last_sequence = event.sequence;
    }
}

refract_guest::export_projection!(WordCounter);

#[cfg(test)]
mod tests {
    use refract_guest::testing::given;

    use super::*;

    #[test]
    fn counts_each_word_across_streams() {
        let docs = given()
            .event(
                "a",
                "TextWritten",
                serde_json::json!({"text": "The cat, the HAT."}),
            )
            .event("b", "TextWritten", serde_json::json!({"text": "a cat"}))
            .docs::<WordCounter>();
        assert_eq!(docs["the"]["count"], 2);
        assert_eq!(docs["cat"]["count"], 2);
        assert_eq!(docs["cat"]["last_sequence"], 2);
        assert_eq!(docs["hat"]["count"], 1);
        assert!(!docs.contains_key("a-"));
    }
}
