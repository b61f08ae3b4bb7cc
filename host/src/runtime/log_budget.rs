//! What one component may write to the daemon's log, whatever its instances: an
//! instance lives for a page (or a read), so a cap per instance alone would let a
//! guest that gets many small pages fill the disk everyone shares. Lines from its
//! stdout, stderr and `host.log` together get [`LOG_BYTES_PER_MINUTE`] per
//! component per minute; the rest is dropped, which is noted once per minute.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// Bytes of guest log lines one component may write per minute.
pub const LOG_BYTES_PER_MINUTE: usize = 64 << 10;
const WINDOW: Duration = Duration::from_secs(60);
/// Windows kept before the old ones are swept (components are bounded by deploys).
const SWEEP_AT: usize = 4_096;

/// Each component's current window: when it began, bytes written, drop noted.
static WINDOWS: LazyLock<Mutex<HashMap<String, (Instant, usize, bool)>>> =
    LazyLock::new(Mutex::default);

/// What to do with a line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Allowance {
    /// Log it.
    Log,
    /// Drop it, and say once that the component's lines are being dropped.
    DropNoting,
    /// Drop it.
    Drop,
}

/// Charges `bytes` to `component`'s window.
pub(crate) fn charge(component: &str, bytes: usize) -> Allowance {
    charge_at(component, bytes, Instant::now())
}

fn charge_at(component: &str, bytes: usize, now: Instant) -> Allowance {
    let mut windows = WINDOWS.lock().unwrap_or_else(|p| p.into_inner());
    if windows.len() >= SWEEP_AT {
        windows.retain(|_, (since, _, _)| now.duration_since(*since) < WINDOW);
    }
    let w = windows
        .entry(component.to_owned())
        .or_insert((now, 0, false));
    if now.duration_since(w.0) >= WINDOW {
        *w = (now, 0, false);
    }
    if w.1 + bytes <= LOG_BYTES_PER_MINUTE {
        w.1 += bytes;
        return Allowance::Log;
    }
    if std::mem::replace(&mut w.2, true) {
        Allowance::Drop
    } else {
        Allowance::DropNoting
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_gets_its_bytes_per_minute_whatever_its_instances() {
        let t = Instant::now();
        let name = "log-budget-test@v1";
        let line = 1_000;
        let fits = LOG_BYTES_PER_MINUTE / line;
        for _ in 0..fits {
            assert_eq!(charge_at(name, line, t), Allowance::Log);
        }
        assert_eq!(charge_at(name, line, t), Allowance::DropNoting);
        assert_eq!(charge_at(name, line, t), Allowance::Drop);
        assert_eq!(charge_at("another@v1", line, t), Allowance::Log);
        assert_eq!(charge_at(name, line, t + WINDOW), Allowance::Log);
    }
}
