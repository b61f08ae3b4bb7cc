//! Listing documents without knowing their ids (issue 14, item 6): keyset pages over
//! more documents than one request may scan, a prefix, a field filter whose matches
//! are rarer than a scan, bad parameters named, and the CLI.

use std::collections::BTreeSet;

use refract_test_artifacts::WORD_COUNTER;
use serde_json::{Value, json};

use crate::common::Daemon;

/// Words `w00000`.. `w11999`: more documents than a listing scans at once (10,000).
const WORDS: usize = 12_000;

/// Every page of a listing from `query`; with each page's `scanned`.
async fn pages(daemon: &Daemon, query: &str) -> (Vec<Value>, Vec<u64>) {
    let (mut docs, mut scanned) = (Vec::new(), Vec::new());
    let mut after = String::new();
    for _ in 0..100 {
        let (code, page) = daemon
            .get(&format!("/projections/word-counter/docs?{query}{after}"))
            .await;
        assert_eq!(code, 200, "{page}");
        let listed = page["documents"].as_array().expect("documents");
        assert!(listed.len() <= 1_000, "a page's limit");
        docs.extend(listed.iter().cloned());
        scanned.push(page["scanned"].as_u64().expect("scanned"));
        match page["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => return (docs, scanned),
        }
    }
    panic!("a listing that never ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_documents_than_a_scan_are_listed_by_prefix_and_field_page_by_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), None);
    daemon.deploy(WORD_COUNTER).await;
    let words: Vec<String> = (0..WORDS).map(|i| format!("w{i:05}")).collect();
    for chunk in words.chunks(2_000) {
        let (code, out) = daemon
            .append(
                "texts",
                None,
                &[("TextWritten".into(), json!({"text": chunk.join(" ")}))],
            )
            .await;
        assert_eq!(code, 200, "{out}");
    }
    // The first ten words twice: the only documents with count 2.
    let twice = words[..10].join(" ");
    let (code, out) = daemon
        .append(
            "texts",
            None,
            &[("TextWritten".into(), json!({"text": twice}))],
        )
        .await;
    assert_eq!(code, 200, "{out}");
    let last = out["last_sequence"].as_i64().expect("last_sequence");

    // Read your writes on the listing: the version has all of them once it answers.
    let (docs, _) = pages(
        &daemon,
        &format!("limit=1000&after_sequence={last}&timeout_ms=60000"),
    )
    .await;
    let ids: Vec<&str> = docs.iter().filter_map(|d| d["id"].as_str()).collect();
    assert_eq!(ids.len(), WORDS, "every document once");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in id order");
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), WORDS);
    assert_eq!(docs[5]["document"]["word"], "w00005", "{}", docs[5]);

    // A filter rarer than a scan: the first request scans its 10,000 documents and
    // says where to go on; the second finds nothing more.
    let (docs, scanned) = pages(&daemon, "where=count:2").await;
    let ids: Vec<&str> = docs.iter().filter_map(|d| d["id"].as_str()).collect();
    assert_eq!(
        ids,
        words[..10].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(
        scanned,
        [10_000, 2_000],
        "the scan budget cuts the first request"
    );
    let (docs, _) = pages(&daemon, "prefix=w0001").await;
    assert_eq!(docs.len(), 10);
    let (docs, _) = pages(&daemon, "prefix=w1&where=count:1&limit=700").await;
    assert_eq!(docs.len(), 2_000);

    for (query, names) in [
        ("limit=0", "limit"),
        ("where=count", "where"),
        ("where=a.b:1", "field"),
        ("after=a%00b", "after"),
        ("prefix=%00", "prefix"),
        ("after_sequence=-2", "after"),
        ("timeout_ms=5", "after"),
    ] {
        let (code, out) = daemon
            .get(&format!("/projections/word-counter/docs?{query}"))
            .await;
        assert_eq!(code, 400, "{query}: {out}");
        let text = out["error"].as_str().unwrap_or_default();
        assert!(text.contains(names), "{query}: {out}");
    }
    // Past the limits: a limit above 1,000 is lowered to it; an id argument past
    // 4,096 bytes is refused by name (no id is that long).
    let (code, page) = daemon
        .get("/projections/word-counter/docs?limit=5000")
        .await;
    assert_eq!(code, 200, "{page}");
    assert_eq!(page["documents"].as_array().map(Vec::len), Some(1_000));
    let long = "w".repeat(4_097);
    for arg in ["prefix", "after"] {
        let (code, out) = daemon
            .get(&format!("/projections/word-counter/docs?{arg}={long}"))
            .await;
        assert_eq!(code, 400, "{out}");
        assert!(
            out["error"].as_str().unwrap_or_default().contains(arg),
            "{out}"
        );
    }
    let (code, out) = daemon
        .get(&format!("/projections/word-counter/docs?where=word:{long}"))
        .await;
    assert_eq!(code, 400, "{out}");
    let (code, out) = daemon.get("/projections/nothing-here/docs").await;
    assert_eq!(
        (code, &out["code"]),
        (404, &json!("projection_not_found")),
        "{out}"
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_refract"))
        .args([
            "--url",
            &daemon.url,
            "docs",
            "word-counter",
            "--prefix",
            "w0000",
        ])
        .args(["--where", "count:2"])
        .output()
        .expect("run refract");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 10);
    assert_eq!(lines[0]["document"]["count"], 2);
}
