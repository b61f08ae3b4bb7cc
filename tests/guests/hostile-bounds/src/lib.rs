//! `hostile-bounds`: a projection written against the raw WIT (not the SDK's fold) so
//! that it can return what the SDK never would. What it does depends on the type of
//! each event of the page:
//!
//! - `SliceBomb`: `slice` names one document with 12 million copies of index 0.
//! - `Repeat`: `slice` names one document with index 0 a thousand times.
//! - `FanOut`: `slice` names 200,000 documents for the event.
//! - `BigError`: `apply` returns a 10 MiB error full of newlines and escapes.
//! - `LogFlood`: `slice` writes 100,000 log lines of 200 bytes, then goes on.
//! - `Forge`: `slice` logs a line whose second half looks like a daemon error.
//! - `Grow`: the document `g-<stream>` becomes 200 KB of padding.
//! - `Gather`: `slice` names the documents of `Grow` streams `grow-0` to `grow-63`
//!   (whatever their size), and `apply` keeps them as they are.
//! - anything else (`Fine`): the event's stream is its document, a count.

#[cfg(target_arch = "wasm32")]
mod export {
    use refract_guest::bindings::v1_1::exports::refract::projection::projection::Guest;
    use refract_guest::bindings::v1_1::refract::projection::host;
    use refract_guest::bindings::v1_2::refract::projection::types::{
        ComponentKind, Descriptor, DocChange, DocEvents, DocSlice, DocumentMode, Event, GuestError,
        Settings,
    };

    /// The text a `Forge` event logs after a newline: a daemon pause, made up.
    pub const FORGED: &str = "ERROR refract::daemon::agent: paused: FORGED-BY-GUEST";

    struct Hostile;

    impl Guest for Hostile {
        fn describe() -> Descriptor {
            Descriptor {
                name: "hostile-bounds".into(),
                version: 1,
                kind: ComponentKind::Projection,
                event_types: [
                    "SliceBomb",
                    "Repeat",
                    "FanOut",
                    "BigError",
                    "LogFlood",
                    "Forge",
                    "Grow",
                    "Gather",
                    "Fine",
                ]
                .map(String::from)
                .to_vec(),
                options: Vec::new(),
            }
        }

        fn describe_settings() -> Settings {
            Settings {
                documents: DocumentMode::Custom,
                max_page_size: None,
            }
        }

        fn slice(page: Vec<Event>) -> Result<Vec<DocSlice>, GuestError> {
            let mut out: Vec<DocSlice> = Vec::new();
            for (i, e) in page.iter().enumerate() {
                let i = i as u32;
                match e.event_type.as_str() {
                    "SliceBomb" => out.push(DocSlice {
                        doc_id: "bomb".into(),
                        events: vec![0; 12_000_000],
                    }),
                    "Repeat" => out.push(DocSlice {
                        doc_id: "repeat".into(),
                        events: vec![i; 1000],
                    }),
                    "FanOut" => out.extend((0..200_000).map(|d| DocSlice {
                        doc_id: format!("e{}-d{d}", e.sequence),
                        events: vec![i],
                    })),
                    "Grow" => out.push(DocSlice {
                        doc_id: format!("g-{}", e.stream_id),
                        events: vec![i],
                    }),
                    "Gather" => out.extend((0..64).map(|k| DocSlice {
                        doc_id: format!("g-grow-{k}"),
                        events: vec![i],
                    })),
                    "LogFlood" => {
                        let line = "flood ".repeat(34);
                        for n in 0..100_000 {
                            host::log(refract_guest::bindings::v1_2::refract::projection::host::Level::Info, &format!("{n} {line}"));
                        }
                        push_stream(&mut out, e, i);
                    }
                    "Forge" => {
                        let text = format!("innocent\n{FORGED}\r\u{1b}[2Kalso\u{1b}]0;title\u{7}");
                        host::log(
                            refract_guest::bindings::v1_2::refract::projection::host::Level::Warn,
                            &text,
                        );
                        push_stream(&mut out, e, i);
                    }
                    _ => push_stream(&mut out, e, i),
                }
            }
            Ok(out)
        }

        fn apply(docs: Vec<DocEvents>) -> Result<Vec<DocChange>, GuestError> {
            let mut out = Vec::with_capacity(docs.len());
            for d in docs {
                if let Some(e) = d.events.iter().find(|e| e.event_type == "BigError") {
                    let mut message = String::from("big error\nERROR refract::daemon::agent: ");
                    while message.len() < 10 << 20 {
                        message.push_str("0123456789abcdef\n\u{1b}[31m");
                    }
                    return Err(GuestError {
                        message,
                        event_sequence: Some(e.sequence),
                    });
                }
                if d.events.iter().any(|e| e.event_type == "Gather") {
                    out.push(DocChange::Keep);
                    continue;
                }
                if d.events.iter().any(|e| e.event_type == "Grow") {
                    out.push(DocChange::Put(format!(
                        "{{\"pad\":\"{}\"}}",
                        "x".repeat(200_000)
                    )));
                    continue;
                }
                let before: u64 = d
                    .state
                    .as_deref()
                    .and_then(|s| {
                        s.trim_start_matches("{\"n\":")
                            .trim_end_matches('}')
                            .parse()
                            .ok()
                    })
                    .unwrap_or(0);
                out.push(DocChange::Put(format!(
                    "{{\"n\":{}}}",
                    before + d.events.len() as u64
                )));
            }
            Ok(out)
        }
    }

    /// Adds event `i` to the document of its stream.
    fn push_stream(out: &mut Vec<DocSlice>, e: &Event, i: u32) {
        match out.iter_mut().find(|s| s.doc_id == e.stream_id) {
            Some(s) => s.events.push(i),
            None => out.push(DocSlice {
                doc_id: e.stream_id.clone(),
                events: vec![i],
            }),
        }
    }

    refract_guest::bindings::v1_1::export!(Hostile with_types_in refract_guest::bindings::v1_1);
}
