//! A subscription that emits without restraint (issue 11's attacks on the emit
//! budget), by its setting `mode`, for every `Ping` it handles:
//! - `feedback`: emits two `Ping`s to the stream `loop`, which it handles in turn
//!   (a loop that doubles every page);
//! - `flood`: emits `count` (setting, default 100,000) events of a few bytes to
//!   `flood`, one emit call each, going on when an emit is refused;
//! - `big`: emits `count` (default 300) events of `bytes` (default 1 MiB less 64)
//!   of data to `big`, one emit call each, going on when an emit is refused;
//! - `spread`: emits `count` (default 1,000: the default budget of one event) events,
//!   each to a stream of its own (the costliest commit the budget allows).
//!
//! The last two ignore the host's refusals (an attacker would): only the host can
//! stop them.

use refract_guest::Envelope;
use refract_guest::subscription::{Ctx, Expected, Subscription};
use serde::Deserialize;
use serde_json::json;

/// The events handled.
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub enum Incoming {
    Ping {},
}

/// The subscription.
pub struct HostileEmits;

impl Subscription for HostileEmits {
    type Event = Incoming;
    const NAME: &'static str = "hostile-emits";
    const VERSION: u32 = 1;

    fn handle(ctx: &mut Ctx<'_>, _event: &Envelope<Incoming>) -> Result<(), String> {
        let mode = ctx.setting("mode").unwrap_or_else(|| "feedback".into());
        match mode.as_str() {
            "feedback" => {
                for _ in 0..2 {
                    ctx.emit("loop", Expected::Any, "Ping", &json!({}), None)?;
                }
            }
            "flood" => {
                let n: usize = setting(ctx, "count", 100_000);
                for i in 0..n {
                    let _ = ctx.emit("flood", Expected::Any, "Drop", &json!({ "i": i }), None);
                }
            }
            "big" => {
                let n: usize = setting(ctx, "count", 300);
                let bytes: usize = setting(ctx, "bytes", (1 << 20) - 64);
                let data = json!({ "blob": "x".repeat(bytes.saturating_sub(12)) });
                for _ in 0..n {
                    let _ = ctx.emit("big", Expected::Any, "Big", &data, None);
                }
            }
            "spread" => {
                let n: usize = setting(ctx, "count", 1_000);
                let seq = ctx.sequence();
                for i in 0..n {
                    let stream = format!("spread-{seq}-{i}");
                    ctx.emit(&stream, Expected::Any, "Spread", &json!({}), None)?;
                }
            }
            other => return Err(format!("unknown mode {other:?}")),
        }
        Ok(())
    }
}

fn setting<T: std::str::FromStr>(ctx: &mut Ctx<'_>, key: &str, default: T) -> T {
    ctx.setting(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

refract_guest::export_subscription!(HostileEmits);
