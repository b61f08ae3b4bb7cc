//! Collections (issue 14, WIT 1.2.0): seed 003's word counter (`word-count`) keeps a
//! document per word and the dictionary's pages in two collections of one
//! projection. Deployed as a component and fed a workload over HTTP, each collection
//! lists back equal to the SDK's native fold; the word `dictionary` and the
//! dictionary's pages never meet; the default collection stays empty; a collection
//! the projection does not declare, or an id that could spell another collection's
//! key, is refused.

use std::collections::BTreeMap;
use std::time::Duration;

use refract_guest::Projection;
use serde_json::{Value, json};
use word_count::{DICTIONARY, WORDS, WordCount};

use crate::common::Daemon;
use crate::multi_stream::{EVENTS, append_all, encode, listed_with};

/// The native fold's documents of one collection, by id.
fn native_collection(
    native: &BTreeMap<refract_guest::DocRef, Value>,
    collection: &str,
) -> BTreeMap<String, Value> {
    native
        .iter()
        .filter(|(doc, _)| doc.collection() == Some(collection))
        .map(|(doc, body)| (doc.id.clone(), body.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_word_counter_keeps_words_and_its_dictionary_in_two_collections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), None);
    daemon.deploy(refract_test_artifacts::WORD_COUNT).await;
    let mut workload = word_count::workload(5, EVENTS);
    // The last word: the documents read by id below exist whatever the workload did.
    for word in ["dictionary", "Échelle"] {
        let data = json!({"Key": word, "Value": 99});
        workload.push((format!("word-{word}"), "ValueUpdated".into(), data, None));
    }
    let (events, head) = append_all(&daemon, workload).await;
    let p = daemon
        .wait_caught_up(WordCount::NAME, 1, head, Duration::from_secs(120))
        .await;
    assert_eq!(p["wit"], "1.2.0", "{p}");
    assert_eq!(p["collections"], json!([WORDS, DICTIONARY]), "{p}");
    let native = refract_guest::testing::project_all::<WordCount>(&events).expect("fold");

    // Each collection lists back equal to the native fold, ids as within it.
    for collection in [WORDS, DICTIONARY] {
        let want = native_collection(&native, collection);
        assert!(want.len() > 3, "{collection}: a workload worth checking");
        let query = format!("collection={collection}&limit=5");
        let got = listed_with(&daemon, "word-count", &query).await;
        assert_eq!(got, want, "{collection}");
    }
    // The default collection holds nothing: no named collection's document leaks in.
    let (code, page) = daemon.get("/projections/word-count/docs").await;
    assert_eq!((code, &page["documents"]), (200, &json!([])), "{page}");

    // One word and one page by id, the word `dictionary` beside the page `d`.
    let word = daemon
        .get("/projections/word-count/docs/word/dictionary")
        .await;
    let want = &native[&refract_guest::DocRef::in_collection(WORDS, "dictionary")];
    assert_eq!((word.0, &word.1), (200, want));
    let (code, page) = daemon
        .get("/projections/word-count/docs/dictionary/d")
        .await;
    assert_eq!(code, 200, "{page}");
    assert_eq!(page["words"]["dictionary"], word.1["count"], "{page}");
    // A non-ASCII id in a collection: the page `é`.
    let (code, page) = daemon
        .get(&format!(
            "/projections/word-count/docs/dictionary/{}",
            encode("é")
        ))
        .await;
    assert_eq!(
        (code, &page["words"]["Échelle"]),
        (200, &word_tally(&native, "Échelle"))
    );
    // The same id in the default collection is another document (there is none).
    let (code, body) = daemon.get("/projections/word-count/docs/dictionary").await;
    assert_eq!(code, 404, "{body}");

    // A prefix within a collection, paged.
    let d_words = listed_with(&daemon, "word-count", "collection=word&prefix=d&limit=1").await;
    let mut want = native_collection(&native, WORDS);
    want.retain(|id, _| id.starts_with('d'));
    assert!(want.contains_key("dictionary"), "{want:?}");
    assert_eq!(d_words, want);

    // Read your writes and a consistent read work on a collection's document too.
    let (code, out) = daemon
        .post_json(
            "/streams/word-zebra/events",
            &json!({"events": [{"type": "ValueUpdated", "data": {"Key": "zebra", "Value": 1000}}]}),
        )
        .await;
    assert_eq!(code, 200, "{out}");
    let after = out["last_sequence"].as_i64().expect("last_sequence");
    let path = format!("/projections/word-count/docs/word/zebra?after={after}");
    let (code, zebra) = daemon.get(&path).await;
    assert_eq!((code, &zebra["count"]), (200, &json!(1000)), "{zebra}");
    let (code, page) = daemon
        .get("/projections/word-count/docs/dictionary/z?consistent=true")
        .await;
    assert_eq!(
        (code, &page["words"]["zebra"]),
        (200, &json!(1000)),
        "{page}"
    );
}

/// The native fold's tally of `word`.
fn word_tally(native: &BTreeMap<refract_guest::DocRef, Value>, word: &str) -> Value {
    native[&refract_guest::DocRef::in_collection(WORDS, word)]["count"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeclared_collections_and_ids_that_spell_keys_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), None);
    daemon.deploy(refract_test_artifacts::WORD_COUNT).await;
    daemon.deploy(refract_test_artifacts::CAPPED_COUNTER).await;
    let (code, out) = daemon
        .post_json(
            "/streams/word-all/events",
            &json!({"events": [{"type": "ValueUpdated", "data": {"Key": "all", "Value": 1}}]}),
        )
        .await;
    assert_eq!(code, 200, "{out}");
    let head = out["last_sequence"].as_i64().expect("last_sequence");
    daemon
        .wait_caught_up("word-count", 1, head, Duration::from_secs(60))
        .await;

    // A collection it does not declare: 404 naming those it does.
    let (code, body) = daemon.get("/projections/word-count/docs/words/all").await;
    assert_eq!(code, 404, "{body}");
    let text = body.to_string();
    assert!(
        text.contains("\\\"word\\\"") && text.contains("dictionary"),
        "{text}"
    );
    // A projection of WIT 1.1.0 has only its default collection.
    let (code, body) = daemon
        .get("/projections/capped-counter/docs/word/all")
        .await;
    assert_eq!(code, 404, "{body}");
    assert!(
        body.to_string().contains("only its default collection"),
        "{body}"
    );
    let (code, body) = daemon
        .get("/projections/word-count/docs?collection=words")
        .await;
    assert_eq!(code, 404, "{body}");

    // Names and ids that are no names or ids: 400, before any lookup.
    for path in [
        "/projections/word-count/docs/Big%20Words/all",
        "/projections/word-count/docs/%1Fword%1Fall",
        "/projections/word-count/docs/word/a%1Fb",
        "/projections/word-count/docs?collection=Word",
        "/projections/word-count/docs?prefix=%1Fword",
        "/projections/word-count/docs?after=%1Fword%1F",
    ] {
        let (code, body) = daemon.get(path).await;
        assert_eq!(code, 400, "{path}: {body}");
    }
    // The word is there, in its collection.
    let (code, body) = daemon.get("/projections/word-count/docs/word/all").await;
    assert_eq!((code, &body["count"]), (200, &json!(1)), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_naming_a_collection_it_did_not_declare_fails_only_that_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = "[components.hostile-collections]\nattempts = 1\non_error = \"dead-letter\"\n";
    let daemon = Daemon::start(&dir.path().join("data"), Some(config));
    daemon
        .deploy(refract_test_artifacts::HOSTILE_COLLECTIONS)
        .await;
    let mut head = 0;
    for (stream, ty) in [
        ("s-1", "Fine"),
        ("s-2", "Undeclared"),
        ("s-3", "SpelledKey"),
        ("s-4", "BadName"),
        ("s-1", "Fine"),
    ] {
        let (code, out) = daemon
            .append(stream, None, &[(ty.to_owned(), json!({}))])
            .await;
        assert_eq!(code, 200, "{out}");
        head = out["last_sequence"].as_i64().expect("last_sequence");
    }
    let p = daemon
        .wait_caught_up("hostile-collections", 1, head, Duration::from_secs(60))
        .await;
    assert_eq!(p["dead_letter_count"], 3, "{p}");
    let (code, body) = daemon
        .get("/projections/hostile-collections/versions/1/dead-letters")
        .await;
    assert_eq!(code, 200, "{body}");
    let errors: Vec<String> = body["dead_letters"]
        .as_array()
        .expect("letters")
        .iter()
        .map(|d| d["error"].as_str().unwrap_or_default().to_owned())
        .collect();
    for (error, needle) in errors.iter().zip([
        "collection \"secret\", which the component does not declare",
        "without control characters",
        "must be 1 to 64 bytes of a-z, 0-9",
    ]) {
        assert!(error.contains(needle), "{error:?} should say {needle:?}");
    }
    // What it may write, it wrote; nothing reached the default collection.
    let (code, doc) = daemon
        .get("/projections/hostile-collections/docs/word/s-1")
        .await;
    assert_eq!((code, doc), (200, json!(2)));
    let listed = listed_with(&daemon, "hostile-collections", "collection=word").await;
    assert_eq!(listed.keys().collect::<Vec<_>>(), ["s-1"]);
    let (code, page) = daemon.get("/projections/hostile-collections/docs").await;
    assert_eq!((code, &page["documents"]), (200, &json!([])), "{page}");
}
