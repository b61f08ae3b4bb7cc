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

/// Writes one line to the host's log.
pub fn log(level: Level, message: &str) {
    // On wasm the export glue sets the sink (its WIT version's `host.log`) before any
    // projection code runs; stderr is the fallback natively.
    #[cfg(target_arch = "wasm32")]
    if crate::__glue::log(level, message) {
        return;
    }
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
