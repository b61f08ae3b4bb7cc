//! The host imports (`host`: `log`, `panicked`), implemented once for every WIT
//! version: each version's bindings get a thin trait impl from [`impl_host!`] that
//! converts its generated types and calls these.

use super::state::{HostState, PanicReport};

/// Longest log line or panic message kept from a guest.
const MAX_MESSAGE: usize = 4096;

impl HostState {
    /// `host.log`: one line in the host's log, tagged with the component.
    pub(crate) fn log_line(&mut self, level: tracing::Level, message: &str) {
        let component = self.component.as_str();
        let message = truncate(message, MAX_MESSAGE);
        match level {
            tracing::Level::TRACE => tracing::trace!(component, "{message}"),
            tracing::Level::DEBUG => tracing::debug!(component, "{message}"),
            tracing::Level::INFO => tracing::info!(component, "{message}"),
            tracing::Level::WARN => tracing::warn!(component, "{message}"),
            tracing::Level::ERROR => tracing::error!(component, "{message}"),
        }
    }

    /// `host.panicked`: keeps the guest's reason for the trap that follows.
    pub(crate) fn record_panic(&mut self, message: &str, event_sequence: Option<u64>) {
        self.panic = Some(PanicReport {
            message: truncate(message, MAX_MESSAGE).to_owned(),
            event_sequence: event_sequence.and_then(|s| i64::try_from(s).ok()),
        });
    }
}

/// Cuts `s` to at most `max` bytes at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Implements the `host` trait a version's bindgen generates (the argument is the
/// module path of its `host` bindings) with the shared functions above. The
/// generated types differ per version, their shapes do not.
macro_rules! impl_host {
    ($($host:ident)::+) => {
        impl $($host)::+::Host for $crate::runtime::state::HostState {
            fn log(&mut self, level: $($host)::+::Level, message: String) {
                use $($host)::+::Level as L;
                let level = match level {
                    L::Trace => tracing::Level::TRACE,
                    L::Debug => tracing::Level::DEBUG,
                    L::Info => tracing::Level::INFO,
                    L::Warn => tracing::Level::WARN,
                    L::Error => tracing::Level::ERROR,
                };
                self.log_line(level, &message);
            }

            fn panicked(&mut self, error: $($host)::+::GuestError) {
                self.record_panic(&error.message, error.event_sequence);
            }
        }
    };
}

pub(crate) use impl_host;
