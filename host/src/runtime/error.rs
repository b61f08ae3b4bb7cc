//! The runtime's errors: what can go wrong loading or calling a component, who was
//! at fault, and which sandbox limit a guest hit. Bottom layer: imports only
//! `guest_text` (to clip the guest's words).

use super::guest_text;

/// What the message of an error starts with when no instance could be had right now
/// (a host condition: wait and try again).
pub(crate) const BUSY: &str = "no instance slot free right now";

/// Who was at fault when a call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    /// The component misbehaved: its own error, a trap, a limit, a bad result.
    Guest,
    /// The host failed (a bug or a resource problem); the guest is not to blame.
    Host,
    /// Nothing failed: an operator paused the version.
    Operator,
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

/// A sandbox limit a guest can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The CPU deadline of one call.
    Cpu,
    /// The memory cap.
    Memory,
    /// The wasm stack limit.
    Stack,
    /// The checks on what a call returns (sizes, JSON, ids).
    Result,
}

impl Limit {
    /// How the error message of a hit on this limit begins (after the component).
    pub(crate) const fn phrase(self) -> &'static str {
        match self {
            Self::Cpu => "exceeded its CPU time limit",
            Self::Memory => "exceeded its memory limit",
            Self::Stack => "exceeded its stack limit",
            Self::Result => "returned an invalid result",
        }
    }
}

impl RuntimeError {
    /// A guest error whose `message` (which may hold the guest's own text) is
    /// clipped: bounded and with control characters escaped.
    pub fn guest(component: String, event_sequence: Option<i64>, message: &str) -> Self {
        Self::Guest {
            component,
            event_sequence,
            message: guest_text::clip(message),
        }
    }

    /// The limit a guest error reports, if it was one.
    pub fn limit(&self) -> Option<Limit> {
        let Self::Guest { message, .. } = self else {
            return None;
        };
        [Limit::Cpu, Limit::Memory, Limit::Stack, Limit::Result]
            .into_iter()
            .find(|l| message.starts_with(l.phrase()))
    }

    /// Whether no instance could be had right now (every slot of the team, or of the
    /// shared pool, taken): a host condition, waited out and tried again.
    pub fn is_busy(&self) -> bool {
        matches!(self, Self::Host(m) if m.starts_with(BUSY))
    }

    /// Whether the guest or the host was at fault.
    pub fn fault(&self) -> Fault {
        match self {
            Self::Host(_) => Fault::Host,
            _ => Fault::Guest,
        }
    }
}
