//! The host imports (`host`: `log`, `panicked`), implemented once for every WIT
//! version: each version's bindings get a thin trait impl from [`impl_host!`] that
//! converts its generated types and calls these.

use super::guest_text::clip;
use super::output::OUTPUT_CAP;
use super::state::{HostState, PanicReport};

impl HostState {
    /// `host.log`: one line in the host's log, tagged with the component, clipped;
    /// past [`OUTPUT_CAP`] bytes per instance (as for stdout and stderr) lines are
    /// dropped, which is noted once.
    pub(crate) fn log_line(&mut self, level: tracing::Level, message: &str) {
        if self.log_bytes >= OUTPUT_CAP {
            if !self.log_capped {
                self.log_capped = true;
                tracing::warn!(
                    component = %self.component,
                    "guest log lines beyond {OUTPUT_CAP} bytes are dropped"
                );
            }
            return;
        }
        let component = self.component.as_str();
        let message = clip(message);
        self.log_bytes += message.len() + 1;
        if !super::output::logs(component, message.len() + 1) {
            return;
        }
        match level {
            tracing::Level::TRACE => tracing::trace!(component, "{message}"),
            tracing::Level::DEBUG => tracing::debug!(component, "{message}"),
            tracing::Level::INFO => tracing::info!(component, "{message}"),
            tracing::Level::WARN => tracing::warn!(component, "{message}"),
            tracing::Level::ERROR => tracing::error!(component, "{message}"),
        }
    }

    /// `host.panicked`: keeps the guest's reason (clipped) for the trap that follows.
    pub(crate) fn record_panic(&mut self, message: &str, event_sequence: Option<u64>) {
        self.panic = Some(PanicReport {
            message: clip(message),
            event_sequence: event_sequence.and_then(|s| i64::try_from(s).ok()),
        });
    }
}

/// The `log` and `panicked` functions of a version's `host` trait (the argument is
/// the module path of its `host` bindings), calling the shared functions above: the
/// generated types differ per version and per world, their shapes do not.
macro_rules! host_fns {
    ($($host:ident)::+) => {
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
    };
}

/// Implements a projector version's `host` trait (the argument is the module path
/// of its `host` bindings), which has only `log` and `panicked`.
macro_rules! impl_host {
    ($($host:ident)::+) => {
        impl $($host)::+::Host for $crate::runtime::state::HostState {
            $crate::runtime::host::host_fns!($($host)::+);
        }
    };
}

pub(crate) use {host_fns, impl_host};
