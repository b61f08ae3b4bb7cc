//! The WebAssembly runtime: loads components, validates them, and calls them a page
//! at a time inside a sandbox. It knows nothing of SQL.

mod engine;
mod guest;
mod limits;
mod loaded;
mod sandbox;
mod state;
pub mod subscriber;
mod types;
pub mod v1;

pub use engine::{LoadedComponent, Runtime};
pub use guest::{DocInput, Guest};
pub use limits::Limits;
pub use loaded::Loaded;
pub use subscriber::{
    EmittedEvent, Expected, LoadedSubscription, StartPosition, Subscriber, SubscriberHost,
    SubscriptionDescriptor,
};
pub use types::{ComponentKind, Descriptor, DocChange, Slice, slice_by_stream};

/// Who was at fault when a call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    /// The component misbehaved: its own error, a trap, a limit, a bad result.
    Guest,
    /// The host failed (a bug or a resource problem); the guest is not to blame.
    Host,
}

/// What can go wrong loading or calling a component.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The bytes are not a WebAssembly component.
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    /// The component does not implement a world refract runs.
    #[error("the component does not implement refract's projector world: {0}")]
    WrongWorld(String),
    /// The component's descriptor is unusable.
    #[error("the component's describe() is invalid: {0}")]
    BadDescriptor(String),
    /// A call into the guest failed because of the guest.
    #[error("component {component}{}: {message}", at_event(*.event_sequence))]
    Guest {
        /// Which component (`name@vN`).
        component: String,
        /// The sequence of the event it failed on, if known.
        event_sequence: Option<i64>,
        /// What happened.
        message: String,
    },
    /// The host failed.
    #[error("host error: {0}")]
    Host(String),
}

fn at_event(seq: Option<i64>) -> String {
    seq.map(|s| format!(" failed at event {s}"))
        .unwrap_or_else(|| " failed".to_owned())
}

impl RuntimeError {
    /// Whether the guest or the host was at fault.
    pub fn fault(&self) -> Fault {
        match self {
            Self::Host(_) => Fault::Host,
            _ => Fault::Guest,
        }
    }
}

/// Writes one line a guest logged, tagged with the component, capped at 4 KiB.
pub(crate) fn log_guest_line(component: &str, level: tracing::Level, message: &str) {
    let message = truncate(message, 4096);
    match level {
        tracing::Level::TRACE => tracing::trace!(component, "{message}"),
        tracing::Level::DEBUG => tracing::debug!(component, "{message}"),
        tracing::Level::INFO => tracing::info!(component, "{message}"),
        tracing::Level::WARN => tracing::warn!(component, "{message}"),
        _ => tracing::error!(component, "{message}"),
    }
}

/// Cuts `s` to at most `max` bytes at a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
