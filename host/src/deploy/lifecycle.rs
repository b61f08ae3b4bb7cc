//! The blue/green lifecycle of a projection's versions: a new version catches up in
//! the background, is promoted to `live` (the previous live one becomes `standby`, so
//! a rollback is another promote), and is finally `retired` (agent stopped, documents
//! dropped). Only these decisions are stored; "caught up" is read off the lag.

use std::fmt;

/// A deployed version's lifecycle state, as stored in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionState {
    /// Deployed beside a live version; rebuilding, not serving unversioned reads.
    CatchingUp,
    /// Serves the name's unversioned reads.
    Live,
    /// Was live; still running, so promoting it again is instant.
    Standby,
    /// Agent stopped, documents dropped.
    Retired,
}

impl VersionState {
    /// The stored text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CatchingUp => "catching-up",
            Self::Live => "live",
            Self::Standby => "standby",
            Self::Retired => "retired",
        }
    }

    /// Parses the stored form; anything unknown reads as catching-up (serves nothing).
    pub fn parse(s: &str) -> Self {
        match s {
            "live" => Self::Live,
            "standby" => Self::Standby,
            "retired" => Self::Retired,
            _ => Self::CatchingUp,
        }
    }

    /// The state shown to users: a catching-up version with no lag shows `caught-up`.
    pub fn shown(self, lag: i64) -> &'static str {
        match self {
            Self::CatchingUp if lag == 0 => "caught-up",
            other => other.as_str(),
        }
    }
}

impl fmt::Display for VersionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a lifecycle change did not happen: refused (every variant but `Store`), or
/// the store failed.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The version is still rebuilding and the promote was not forced.
    #[error(
        "{name} version {version} is still catching up ({lag} events behind); \
         promote it when it has caught up, or force it"
    )]
    NotCaughtUp {
        /// The projection.
        name: String,
        /// The version.
        version: u32,
        /// How far behind it is.
        lag: i64,
    },
    /// The live version cannot be retired.
    #[error("{name} version {version} is live; promote another version before retiring it")]
    RetireLive {
        /// The projection.
        name: String,
        /// The version.
        version: u32,
    },
    /// Only subscriptions are rewound; a projection is rebuilt by a redeploy.
    #[error(
        "{name} version {version} is a projection: deploy a new version (or use refract \
         dev) to rebuild it; only subscriptions are rewound"
    )]
    RewindProjection {
        /// The projection.
        name: String,
        /// The version.
        version: u32,
    },
    /// The team has as many components as it may.
    #[error("team {team} may have at most {max} components; retire one first")]
    TooManyComponents {
        /// The team.
        team: String,
        /// Its limit.
        max: usize,
    },
    /// The version was retired: it cannot be promoted.
    #[error("{name} version {version} is retired; deploy it again as a new version")]
    Retired {
        /// The projection.
        name: String,
        /// The version.
        version: u32,
    },
    /// The store failed (nothing was refused).
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}
