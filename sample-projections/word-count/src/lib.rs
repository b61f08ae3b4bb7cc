//! `word-count`: seed 003's distributed word counter. Counting instances append
//! `ValueUpdated { Key, Value }` (the word's new tally) and `ValueDeleted { Key }`
//! (the word leaves the dictionary); this projection keeps
//! - collection `word`: a document per word, its id the word, holding its tally;
//! - collection `dictionary`: the shared dictionary the instances read, one page per
//!   initial letter (`dictionary/d` holds every word starting with `d`), so no one
//!   document grows with the whole vocabulary.
//!
//! It shows *collections*: two kinds of documents in one projection, each in its own
//! id space, so the word `dictionary` (`word/dictionary`) never meets a dictionary
//! page. Read them as `/projections/word-count/docs/word/{word}` and
//! `/projections/word-count/docs/dictionary/{letter}`.

use std::collections::BTreeMap;

use refract_guest::{DocRef, Documents, Envelope, Projection};
use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;
mod workload;

pub use workload::{VOCABULARY, WorkloadEvent, workload};

/// The collection of per-word documents.
pub const WORDS: &str = "word";
/// The collection of dictionary pages.
pub const DICTIONARY: &str = "dictionary";

/// The counters' events, named and shaped as in the seed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub enum CounterEvent {
    /// A word was counted: its new tally.
    ValueUpdated {
        /// The word.
        #[serde(rename = "Key")]
        key: String,
        /// Its tally now.
        #[serde(rename = "Value")]
        value: i64,
    },
    /// A word was removed from the dictionary.
    ValueDeleted {
        /// The word.
        #[serde(rename = "Key")]
        key: String,
    },
}

impl CounterEvent {
    /// The word the event is about.
    pub fn key(&self) -> &str {
        match self {
            Self::ValueUpdated { key, .. } | Self::ValueDeleted { key } => key,
        }
    }
}

/// One word's tally (collection `word`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WordTally {
    /// The word (also the document's id).
    pub word: String,
    /// Its tally.
    pub count: i64,
    /// The sequence of the event that set it.
    pub sequence: u64,
}

/// One page of the dictionary (collection `dictionary`): every word with the page's
/// initial letter, and its tally.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DictionaryPage {
    /// The initial letter (also the document's id).
    pub letter: String,
    /// The words and their tallies.
    pub words: BTreeMap<String, i64>,
    /// The sum of the tallies.
    pub total: i64,
}

/// A document of either collection; stored as the one it holds (no tag).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CountDoc {
    /// A word's tally.
    Word(WordTally),
    /// A dictionary page.
    Page(DictionaryPage),
}

/// The dictionary page a word is on: its first character, lowercased.
pub fn page_of(word: &str) -> String {
    word.chars()
        .next()
        .map_or_else(String::new, |c| c.to_lowercase().collect())
}

/// The projection.
pub struct WordCount;

impl Projection for WordCount {
    type Event = CounterEvent;
    type Doc = CountDoc;
    const NAME: &'static str = "word-count";
    const VERSION: u32 = 1;
    const DOCUMENTS: Documents = Documents::Custom;
    const COLLECTIONS: &'static [&'static str] = &[WORDS, DICTIONARY];

    fn doc_refs(event: &Envelope<CounterEvent>) -> Vec<DocRef> {
        let key = event.event.key();
        vec![
            DocRef::in_collection(WORDS, key),
            DocRef::in_collection(DICTIONARY, page_of(key)),
        ]
    }

    fn create(_id: &str, _event: &Envelope<CounterEvent>) -> Option<CountDoc> {
        // Every document is in a named collection: see `create_in`.
        None
    }

    fn create_in(doc: &DocRef, event: &Envelope<CounterEvent>) -> Option<CountDoc> {
        let mut new = match doc.collection() {
            Some(WORDS) => CountDoc::Word(WordTally {
                word: doc.id.clone(),
                count: 0,
                sequence: 0,
            }),
            Some(DICTIONARY) => CountDoc::Page(DictionaryPage {
                letter: doc.id.clone(),
                ..DictionaryPage::default()
            }),
            _ => return None,
        };
        // A deletion of a word never counted creates nothing.
        if matches!(event.event, CounterEvent::ValueDeleted { .. }) {
            return None;
        }
        Self::apply(&mut new, event);
        Some(new)
    }

    fn apply(doc: &mut CountDoc, event: &Envelope<CounterEvent>) {
        match (doc, &event.event) {
            (CountDoc::Word(w), CounterEvent::ValueUpdated { value, .. }) => {
                w.count = *value;
                w.sequence = event.sequence;
            }
            // Deleted by `should_delete`.
            (CountDoc::Word(_), CounterEvent::ValueDeleted { .. }) => {}
            (CountDoc::Page(p), CounterEvent::ValueUpdated { key, value }) => {
                p.words.insert(key.clone(), *value);
                p.total = p.words.values().sum();
            }
            (CountDoc::Page(p), CounterEvent::ValueDeleted { key }) => {
                p.words.remove(key);
                p.total = p.words.values().sum();
            }
        }
    }

    fn should_delete(doc: &CountDoc, event: &Envelope<CounterEvent>) -> bool {
        match doc {
            CountDoc::Word(_) => matches!(event.event, CounterEvent::ValueDeleted { .. }),
            CountDoc::Page(p) => p.words.is_empty(),
        }
    }
}

refract_guest::export_projection!(WordCount);
