use std::collections::BTreeMap;

use refract_guest::testing::{Given, given, project_all};
use refract_guest::{DocRef, Documents};
use serde_json::{Value, json};

use crate::{DICTIONARY, VOCABULARY, WORDS, WordCount, workload};

type P = WordCount;

fn updated(events: Given, word: &str, value: i64) -> Given {
    events.event(
        &format!("word-{word}"),
        "ValueUpdated",
        json!({"Key": word, "Value": value}),
    )
}

fn deleted(events: Given, word: &str) -> Given {
    events.event(
        &format!("word-{word}"),
        "ValueDeleted",
        json!({"Key": word}),
    )
}

#[test]
fn describes_itself_with_two_collections() {
    let d = refract_guest::describe::<P>();
    assert_eq!((d.name.as_str(), d.version), ("word-count", 1));
    assert_eq!(d.documents, Documents::Custom);
    assert_eq!(d.event_types, ["ValueUpdated", "ValueDeleted"]);
}

#[test]
fn a_word_and_its_dictionary_page_are_kept_apart() {
    let events = updated(given(), "dictionary", 1);
    let events = updated(events, "dictionary", 2);
    let events = updated(events, "date", 1);
    let events = updated(events, "all", 5);
    let word = events.doc_in::<P>(WORDS, "dictionary").expect("word doc");
    assert_eq!(word["count"], 2);
    let page = events.doc_in::<P>(DICTIONARY, "d").expect("page d");
    assert_eq!(page["words"], json!({"date": 1, "dictionary": 2}));
    assert_eq!(page["total"], 3);
    // The word `all` and a page `a`: each in its own collection.
    assert_eq!(events.doc_in::<P>(WORDS, "all").expect("all")["count"], 5);
    assert!(events.doc_in::<P>(DICTIONARY, "all").is_none());
    assert!(events.doc_in::<P>(WORDS, "a").is_none());
    // Nothing in the default collection.
    assert!(events.docs::<P>().is_empty());
}

#[test]
fn a_deleted_word_leaves_both_collections_and_an_empty_page_goes() {
    let events = updated(given(), "zebra", 1);
    let events = updated(events, "zebra", 2);
    let events = deleted(events, "zebra");
    assert!(events.doc_in::<P>(WORDS, "zebra").is_none());
    assert!(events.doc_in::<P>(DICTIONARY, "z").is_none());
    // Counted again: from 1.
    let events = updated(events, "zebra", 1);
    assert_eq!(
        events.doc_in::<P>(WORDS, "zebra").expect("word")["count"],
        1
    );
    // Deleting a word never counted creates nothing.
    let events = deleted(events, "never");
    assert!(events.doc_in::<P>(WORDS, "never").is_none());
    assert!(events.doc_in::<P>(DICTIONARY, "n").is_none());
}

#[test]
fn pages_are_by_lowercased_initial() {
    let events = updated(given(), "Échelle", 3);
    let events = updated(events, "écrire", 1);
    let page = events.doc_in::<P>(DICTIONARY, "é").expect("page é");
    assert_eq!(page["words"], json!({"Échelle": 3, "écrire": 1}));
}

#[test]
fn an_empty_word_is_refused_naming_the_event() {
    let events = updated(given(), "", 1);
    let e = refract_guest::testing::project::<P>(events.events()).expect_err("empty id");
    assert!(
        e.message.contains("word/") && e.message.contains("sequence 1"),
        "{e}"
    );
}

#[test]
fn the_workload_folds_to_the_tallies_it_counted() {
    let events = workload(7, 3_000)
        .into_iter()
        .fold(given(), |g, (stream, ty, data, _)| {
            g.event(&stream, &ty, data)
        });
    let docs = project_all::<P>(events.events()).expect("fold");
    // Replay the workload's own bookkeeping: the last tally of each word still there.
    let mut tallies: BTreeMap<String, i64> = BTreeMap::new();
    for e in events.events() {
        let data: Value = serde_json::from_str(&e.data).expect("json");
        let key = data["Key"].as_str().expect("key").to_owned();
        match e.event_type.as_str() {
            "ValueUpdated" => tallies.insert(key, data["Value"].as_i64().expect("value")),
            _ => tallies.remove(&key),
        };
    }
    for word in VOCABULARY {
        let doc = docs.get(&DocRef::in_collection(WORDS, word));
        assert_eq!(
            doc.map(|d| d["count"].clone()),
            tallies.get(word).map(|t| json!(t))
        );
    }
    let pages: i64 = docs
        .iter()
        .filter(|(d, _)| d.collection() == Some(DICTIONARY))
        .map(|(_, d)| d["total"].as_i64().expect("total"))
        .sum();
    assert_eq!(pages, tallies.values().sum::<i64>());
    assert!(tallies.len() > 5, "a workload worth checking: {tallies:?}");
}
