//! A deterministic run of several counting instances over a small vocabulary, for
//! tests that append it to a real daemon and compare its documents with the native
//! fold.

use std::collections::BTreeMap;

use refract_guest::testing::Rng;
use serde_json::{Value, json};

/// One event to append: (stream id, event type, data, tenant).
pub type WorkloadEvent = (String, String, Value, Option<String>);

/// The words counted: `dictionary` and `all` among them, to show a word never meets
/// a dictionary page.
pub const VOCABULARY: [&str; 12] = [
    "dictionary",
    "all",
    "apple",
    "avocado",
    "banana",
    "berry",
    "cherry",
    "date",
    "delta",
    "Échelle",
    "zebra",
    "7up",
];

/// `n` events from `seed`, the same for the same arguments: each counts a word (its
/// tally one more than before) in the word's stream `word-{word}`, and now and then
/// deletes one (its next count starts again at 1).
pub fn workload(seed: u64, n: usize) -> Vec<WorkloadEvent> {
    let mut rng = Rng::new(seed);
    let mut tallies: BTreeMap<&str, i64> = BTreeMap::new();
    let mut events = Vec::with_capacity(n);
    while events.len() < n {
        let word = VOCABULARY[rng.below(VOCABULARY.len())];
        let stream = format!("word-{word}");
        let counted = tallies.get(word).copied();
        if counted.is_some() && rng.below(10) == 0 {
            tallies.remove(word);
            events.push((
                stream,
                "ValueDeleted".to_owned(),
                json!({"Key": word}),
                None,
            ));
            continue;
        }
        let value = counted.unwrap_or(0) + 1;
        tallies.insert(word, value);
        let data = json!({"Key": word, "Value": value});
        events.push((stream, "ValueUpdated".to_owned(), data, None));
    }
    events
}
