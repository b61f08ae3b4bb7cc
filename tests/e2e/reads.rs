//! Reads that must be right for every projection and bounded for every stream:
//! consistent document reads through the guest (a word counter, whose documents are
//! words, not streams), the aggregate read's answers and error codes, and streams
//! read a page at a time.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use refract_test_artifacts::{STREAM_COUNTER, WORD_COUNTER};
use serde_json::{Value, json};

use crate::common::Daemon;

const WORDS: [&str; 40] = [
    "apple", "river", "stone", "cloud", "ember", "frost", "grove", "haven", "ivory", "jolly",
    "karma", "lemon", "maple", "noble", "ocean", "pearl", "quilt", "raven", "sugar", "tiger",
    "umbra", "vivid", "wheat", "xenon", "yacht", "zebra", "amber", "birch", "coral", "delta",
    "eagle", "fable", "gamma", "hazel", "index", "jewel", "koala", "lunar", "mirth", "nectar",
];

/// What the word counter must hold: per word, its count and last sequence.
#[derive(Default)]
struct Expected(BTreeMap<String, (u64, i64)>);

impl Expected {
    fn doc(&self, word: &str) -> Option<Value> {
        let (count, last) = self.0.get(word)?;
        Some(json!({"word": word, "count": count, "last_sequence": last}))
    }

    /// Appends `texts` to `stream` in one batch and counts their words.
    async fn write(&mut self, daemon: &Daemon, stream: &str, texts: &[String]) {
        let events: Vec<(String, Value)> = texts
            .iter()
            .map(|t| ("TextWritten".to_owned(), json!({ "text": t })))
            .collect();
        let (code, out) = daemon.append(stream, None, &events).await;
        assert_eq!(code, 200, "{out}");
        let first = out["first_sequence"].as_i64().expect("first_sequence");
        for (i, text) in texts.iter().enumerate() {
            for w in text.split_whitespace() {
                let e = self.0.entry(w.to_lowercase()).or_default();
                e.0 += 1;
                e.1 = first + i as i64;
            }
        }
    }
}

/// Texts of 1 to 6 words from [`WORDS`], some repeated, from a fixed seed.
fn texts(seed: &mut u64, n: usize) -> Vec<String> {
    let mut next = || {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 33) as usize
    };
    (0..n)
        .map(|_| {
            let len = 1 + next() % 6;
            (0..len)
                .map(|_| WORDS[next() % WORDS.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn consistent(word: &str) -> String {
    format!("/projections/word-counter/docs/{word}?consistent=true")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consistent_doc_reads_fold_every_committed_event_while_behind_or_paused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), Some("page_size = 3\n"));
    daemon.deploy(WORD_COUNTER).await;
    let (mut seed, mut want) = (7u64, Expected::default());

    // Running (and often behind): every read includes every committed event.
    let mut behind = 0;
    for round in 0..20 {
        let batch = texts(&mut seed, 15);
        want.write(&daemon, &format!("notes-{}", round % 7), &batch)
            .await;
        for w in &WORDS[round % 4 * 10..round % 4 * 10 + 10] {
            let (code, got) = daemon.get(&consistent(w)).await;
            match want.doc(w) {
                Some(doc) => assert_eq!((code, &got), (200, &doc), "{w} in round {round}"),
                None => assert_eq!(code, 404, "{w}: {got}"),
            }
            let (_, plain) = daemon
                .get(&format!("/projections/word-counter/docs/{w}"))
                .await;
            behind += usize::from(Some(&plain) != want.doc(w).as_ref());
        }
    }
    eprintln!("{behind} of 200 plain reads were behind");

    // Paused on a poisoned document: the projection stops, the reads do not.
    want.write(&daemon, "notes-0", &["poison apple".to_owned()])
        .await;
    let started = Instant::now();
    while daemon.projection("word-counter", 1).await["status"] != "paused" {
        assert!(started.elapsed() < Duration::from_secs(30), "never paused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for round in 0..10 {
        let batch = texts(&mut seed, 20);
        want.write(&daemon, &format!("later-{round}"), &batch).await;
    }
    let mut stale = 0;
    for w in WORDS {
        let doc = want.doc(w).expect("every word was written");
        assert_eq!(daemon.get(&consistent(w)).await, (200, doc.clone()), "{w}");
        let (_, plain) = daemon
            .get(&format!("/projections/word-counter/docs/{w}"))
            .await;
        stale += usize::from(plain != doc);
    }
    assert!(
        stale >= 30,
        "the paused projection should lag: {stale} stale"
    );
    let (code, got) = daemon
        .get("/projections/word-counter/docs/apple?version=1&consistent=true")
        .await;
    assert_eq!((code, got), (200, want.doc("apple").expect("apple")));
    let (code, got) = daemon.get(&consistent("poison")).await;
    assert_eq!((code, &got["code"]), (422, &json!("guest_error")), "{got}");
    let (code, got) = daemon.get(&consistent("unwritten")).await;
    assert_eq!(
        (code, &got["code"]),
        (404, &json!("document_not_found")),
        "{got}"
    );

    // Too far behind: the read refuses to scan without bound.
    for part in 0..2 {
        let events: Vec<(String, Value)> = (0..50_001)
            .map(|i| {
                (
                    "TextWritten".to_owned(),
                    json!({"text": format!("w{part}x{i}")}),
                )
            })
            .collect();
        assert_eq!(daemon.append("bulk", None, &events).await.0, 200);
    }
    let (code, got) = daemon.get(&consistent("apple")).await;
    assert_eq!(
        (code, &got["code"]),
        (503, &json!("too_far_behind")),
        "{got}"
    );
    assert!(
        got["error"].as_str().unwrap_or_default().contains("100000"),
        "{got}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregate_reads_answer_for_every_projection_with_distinct_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), None);
    daemon.deploy(WORD_COUNTER).await;
    daemon.deploy(STREAM_COUNTER).await;
    let text = [("TextWritten".to_owned(), json!({"text": "hello world"}))];
    assert_eq!(daemon.append("s-1", None, &text).await.0, 200);

    let (code, got) = daemon.get("/streams/s-1/aggregate/word-counter").await;
    assert_eq!(
        (code, &got["code"]),
        (409, &json!("custom_documents")),
        "{got}"
    );
    let msg = got["error"].as_str().unwrap_or_default();
    assert!(
        msg.contains("GET /projections/word-counter/docs/{id}?consistent=true"),
        "{msg}"
    );

    // A stream that does not exist yet is version 0 to a writer.
    let (code, got) = daemon.get("/streams/new-1/aggregate/stream-counter").await;
    assert_eq!(code, 200, "{got}");
    assert_eq!(got, json!({"id": "new-1", "version": 0, "document": null}));

    let codes = [
        ("/streams/s-1/aggregate/nope", 404, "projection_not_found"),
        (
            "/streams/s-1/aggregate/stream-counter?version=9",
            404,
            "projection_not_found",
        ),
        ("/streams/never", 404, "stream_not_found"),
        ("/projections/nope/docs/x", 404, "projection_not_found"),
        (
            "/projections/nope/docs/x?consistent=true",
            404,
            "projection_not_found",
        ),
        (
            "/projections/word-counter/docs/absent",
            404,
            "document_not_found",
        ),
        (
            "/projections/word-counter/docs/absent?consistent=true",
            404,
            "document_not_found",
        ),
        ("/streams/s-1?limit=0", 400, "invalid"),
        ("/streams/s-1?colour=red", 400, "invalid"),
        ("/no/such/route", 404, "not_found"),
    ];
    for (path, status, want) in codes {
        let (code, got) = daemon.get(path).await;
        assert_eq!(
            (code, &got["code"]),
            (status, &json!(want)),
            "{path}: {got}"
        );
        assert!(got["error"].is_string(), "{path}: {got}");
    }
    let (code, got) = daemon.append("s-1", Some(0), &text).await;
    assert_eq!((code, &got["code"]), (409, &json!("conflict")), "{got}");

    // The consistent read of a word counted on a stream the projection has seen.
    let (code, got) = daemon.get(&consistent("hello")).await;
    assert_eq!(code, 200, "{got}");
    assert_eq!(got["count"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_stream_reads_in_pages_each_event_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), None);
    for part in 0..5 {
        let events: Vec<(String, Value)> = (0..500)
            .map(|i| ("Counted".to_owned(), json!({ "n": part * 500 + i })))
            .collect();
        assert_eq!(daemon.append("long", None, &events).await.0, 200);
    }
    let read_all = |limit: Option<usize>| {
        let daemon = &daemon;
        async move {
            let (mut seen, mut pages, mut from) = (Vec::new(), 0, Some(1u64));
            while let Some(f) = from {
                let q = limit.map(|l| format!("&limit={l}")).unwrap_or_default();
                let (code, page) = daemon.get(&format!("/streams/long?from={f}{q}")).await;
                assert_eq!(code, 200, "{page}");
                assert_eq!(page["version"], 2500);
                for e in page["events"].as_array().expect("events") {
                    seen.push(e["data"]["n"].as_u64().expect("n"));
                }
                from = page["next"].as_u64();
                pages += 1;
                assert!(pages <= 100, "paging does not end: {page}");
            }
            (seen, pages)
        }
    };
    let all: Vec<u64> = (0..2500).collect();
    assert_eq!(
        read_all(None).await,
        (all.clone(), 3),
        "default pages of 1,000"
    );
    assert_eq!(read_all(Some(700)).await, (all.clone(), 4));
    assert_eq!(read_all(Some(50_000)).await, (all.clone(), 1), "capped");
    let (_, first) = daemon.get("/streams/long").await;
    assert_eq!(first["events"].as_array().map(Vec::len), Some(1000));
    assert_eq!(first["next"], 1001);
    let (_, cap) = daemon.get("/streams/long?from=2&limit=100000").await;
    assert_eq!(cap["events"].as_array().map(Vec::len), Some(2499));
    let (code, past) = daemon.get("/streams/long?from=2501").await;
    assert_eq!(
        (code, &past["events"], &past["next"]),
        (200, &json!([]), &Value::Null)
    );

    // The CLI follows `next` and prints every event once, one a line.
    let cli = || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_refract"));
        cmd.args(["--url", &daemon.url, "stream", "long"]);
        cmd
    };
    let out = cli().output().expect("run refract stream");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ns: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let e: Value = serde_json::from_str(l).expect("a JSON event a line");
            e["data"]["n"].as_u64().expect("n")
        })
        .collect();
    assert_eq!(ns, all);
    // `refract stream long | head -3`: the closed pipe ends it quietly.
    let mut child = cli()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn refract stream");
    let stdout = child.stdout.take().expect("stdout");
    let firsts: BTreeSet<String> = BufReader::new(stdout)
        .lines()
        .take(3)
        .map(|l| l.expect("line"))
        .collect();
    assert_eq!(firsts.len(), 3);
    let out = child.wait_with_output().expect("wait refract stream");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !err.contains("panicked"),
        "{:?}: {err}",
        out.status
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_errors_name_things_as_the_calling_team_knows_them() {
    let config = "[teams.alpha]\ntoken = \"alpha-token\"\n[teams.beta]\ntoken = \"beta-token\"\n";
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), Some(config));
    let as_team = |token: &'static str, path: String| {
        let daemon = &daemon;
        async move {
            daemon
                .request_as(Some(token), reqwest::Method::GET, &path, None)
                .await
        }
    };
    let wasm = std::fs::read(WORD_COUNTER).expect("component");
    let (code, out) = daemon
        .request_as(
            Some("alpha-token"),
            reqwest::Method::POST,
            "/components",
            Some(wasm),
        )
        .await;
    assert_eq!(code, 200, "{out}");
    let events = json!({"events": [{"type": "TextWritten", "data": {"text": "hi there"}}]});
    let (code, out) = daemon
        .request_as(
            Some("alpha-token"),
            reqwest::Method::POST,
            "/streams/s-1/events",
            Some(events.to_string().into_bytes()),
        )
        .await;
    assert_eq!(code, 200, "{out}");
    let (code, got) = as_team("alpha-token", "/streams/s-1/aggregate/word-counter".into()).await;
    assert_eq!((code, &got["code"]), (409, &json!("custom_documents")));
    let msg = got["error"].as_str().unwrap_or_default();
    assert!(
        msg.contains("/projections/word-counter/docs/") && !msg.contains("alpha."),
        "{msg}"
    );
    let (code, got) = as_team("alpha-token", consistent("hi")).await;
    assert_eq!((code, &got["count"]), (200, &json!(1)), "{got}");
    for path in [
        consistent("hi"),
        "/streams/s-1/aggregate/word-counter".to_owned(),
    ] {
        let (code, got) = as_team("beta-token", path.clone()).await;
        assert_eq!((code, &got["code"]), (404, &json!("projection_not_found")));
        assert!(!got.to_string().contains("alpha"), "{path}: {got}");
    }
    let (code, got) = as_team("alpha-token", consistent("absent")).await;
    assert_eq!((code, &got["code"]), (404, &json!("document_not_found")));
    assert!(!got.to_string().contains("alpha."), "{got}");
}
