//! Log lines for the host's log, tagged with the component (stderr when run natively).
//!
//! ```
//! refract_guest::log::info("rebuilding");
//! refract_guest::log::log(refract_guest::log::Level::Warn, &format!("{} unknown", 3));
//! ```

use std::fmt;

/// How important a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Step-by-step detail.
    Trace,
    /// Detail for debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the projection handled.
    Warn,
    /// Something went wrong.
    Error,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        })
    }
}

/// Where lines go on wasm: the `host.log` of the world the component exports, set by
/// its export glue before any author code runs.
#[cfg(target_arch = "wasm32")]
static SINK: std::sync::OnceLock<fn(Level, &str)> = std::sync::OnceLock::new();

/// Sends every later line to `sink` (the first sink set stays).
#[cfg(target_arch = "wasm32")]
pub(crate) fn set_sink(sink: fn(Level, &str)) {
    let _ = SINK.set(sink);
}

/// Writes one line to the host's log.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    if let Some(sink) = SINK.get() {
        sink(level, message);
        return;
    }
    // Natively (and, on wasm, before any export ran, which cannot happen) stderr.
    eprintln!("[{level}] {message}");
}

/// Writes a trace line.
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Writes a debug line.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Writes an info line.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Writes a warning line.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Writes an error line.
pub fn error(message: &str) {
    log(Level::Error, message);
}
