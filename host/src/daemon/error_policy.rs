//! How a version meets a failing page (both agent kinds): the attempts of the
//! guest's it gets, and what giving up means.

use crate::retry::{Backoff, RetryPolicy};

/// How a version meets a failing page (`handle` of a subscription, `apply` of a
/// projection).
#[derive(Debug, Clone, Copy)]
pub struct ErrorPolicy {
    /// Attempts of one page (with backoff between them) before giving up.
    pub attempts: u32,
    /// What giving up means.
    pub on_error: OnError,
}

impl Default for ErrorPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            on_error: OnError::Pause,
        }
    }
}

/// What a subscription version does when a page keeps failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    /// Stop and show the error in the status (the default).
    #[default]
    Pause,
    /// Record the failing event as a dead letter and go on after it.
    DeadLetter,
}

impl ErrorPolicy {
    /// The policy's attempts on the agent's own backoff schedule.
    pub fn retry(&self, backoff: Backoff) -> RetryPolicy {
        RetryPolicy {
            attempts: self.attempts,
            backoff,
        }
    }
}
