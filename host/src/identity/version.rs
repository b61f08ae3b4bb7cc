//! The version an append expects its stream at: the one rule for the API's
//! appends, the store's check and a subscription's `emit` (the WIT type and the
//! guest SDK's `Expected` mirror it and convert into it).

/// What the caller expects the stream's version to be before an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the stream's version.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be exactly at this version.
    Exact(u64),
}

impl ExpectedVersion {
    /// Maps the API's `expected_version` (absent: any; 0: no stream; n: exactly n).
    pub fn from_option(v: Option<u64>) -> Self {
        match v {
            None => Self::Any,
            Some(0) => Self::NoStream,
            Some(n) => Self::Exact(n),
        }
    }

    /// Whether a stream currently at `current` (0: no stream) satisfies this
    /// expectation.
    pub fn accepts(self, current: u64) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => current == 0,
            Self::Exact(n) => current == n,
        }
    }

    /// The expectation as a conflict reports it (`any`, `no stream (0)`, `3`).
    pub fn describe(self) -> String {
        match self {
            Self::Any => "any".into(),
            Self::NoStream => "no stream (0)".into(),
            Self::Exact(n) => n.to_string(),
        }
    }
}
