//! What both probes do with a `Poke`, by their setting `mode`:
//! - `echo` (the default): emits `Echoed {sequence}` to the stream `echo` (or the
//!   setting `stream`), with no
//!   idempotency key (so a second handling would append it again);
//! - `bad-type`: emits an event whose type has a newline in it;
//! - `big`: emits an event of `bytes` (setting) bytes of data;
//! - `conflict`: emits to the stream `hot` (pinned to its version then), spins for
//!   `spin` (setting) rounds, so that appends to `hot` land before the commit;
//! - `count`: folds the stream `long` (its `Item`s) a page at a time (1.0.0: whole
//!   reads) and emits `Counted {events}` to `counts`;
//! - `emit-count`: emits two `Item`s to `long`, then counts as `count` does;
//! - `read-page`: reads one page of `long` from the setting `from` (default 1), of
//!   `limit` (default 10) events, and fails if the read fails;
//! - `fail-last-of-many`: does nothing with each event, but (1.1.0, see `lib.rs`)
//!   fails every page of more than one event, naming its last event.

use refract_guest::Envelope;
use refract_guest::subscription::{Ctx, Expected};
use serde::Deserialize;
use serde_json::json;

/// The events handled (any payload).
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub enum Poked {
    Poke {},
}

/// The events of the stream `long` counted by the mode `count`.
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub enum LongEvent {
    Item {},
}

/// Handles one `Poke` as the setting `mode` says.
pub fn handle(ctx: &mut Ctx<'_>, event: &Envelope<Poked>) -> Result<(), String> {
    let mode = ctx.setting("mode").unwrap_or_else(|| "echo".into());
    let seq = event.sequence;
    match mode.as_str() {
        "echo" => {
            // The setting `stream` gives each deployment a stream of its own.
            let stream = ctx.setting("stream").unwrap_or_else(|| "echo".into());
            ctx.emit(
                &stream,
                Expected::Any,
                "Echoed",
                &json!({ "sequence": seq }),
                None,
            )?;
        }
        "bad-type" => {
            ctx.emit("out", Expected::Any, "Bad\nType", &json!({}), None)?;
        }
        "big" => {
            let bytes: usize = setting(ctx, "bytes", 2 << 20);
            let data = json!({ "blob": "x".repeat(bytes) });
            ctx.emit("out", Expected::Any, "Big", &data, None)?;
        }
        "conflict" => {
            // Checked against the version now, and again at commit.
            let key = format!("conflict-{seq}");
            ctx.emit("hot", Expected::Any, "Seen", &json!({}), Some(&key))?;
            let rounds: u64 = setting(ctx, "spin", 50_000_000);
            let mut x = seq;
            for i in 0..rounds {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
            }
            std::hint::black_box(x);
        }
        "emit-count" => {
            for _ in 0..2 {
                ctx.emit("long", Expected::Any, "Item", &json!({}), None)?;
            }
            count(ctx)?;
        }
        "count" => count(ctx)?,
        "read-page" => {
            let from: u64 = setting(ctx, "from", 1);
            let limit: u32 = setting(ctx, "limit", 10);
            ctx.read_stream_page::<LongEvent>("long", from, limit)?;
        }
        "fail-last-of-many" => {}
        other => return Err(format!("unknown mode {other:?}")),
    }
    Ok(())
}

/// Folds the stream `long` and emits how many `Item`s it has to `counts`.
fn count(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let (_, events) = ctx.fold_stream::<LongEvent, _>("long", 0u64, |n, _| *n += 1)?;
    ctx.emit(
        "counts",
        Expected::Any,
        "Counted",
        &json!({ "events": events }),
        None,
    )?;
    Ok(())
}

fn setting<T: std::str::FromStr>(ctx: &mut Ctx<'_>, key: &str, default: T) -> T {
    ctx.setting(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
