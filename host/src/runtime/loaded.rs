//! A loaded component of either kind, with what the registry needs of both.

use std::time::Duration;

use super::{ComponentKind, LoadedComponent, LoadedSubscription};

/// A compiled, validated component: a projection or a subscription.
#[derive(Clone)]
pub enum Loaded {
    /// A projection.
    Projection(LoadedComponent),
    /// A subscription.
    Subscription(LoadedSubscription),
}

impl Loaded {
    /// Its declared name.
    pub fn name(&self) -> &str {
        match self {
            Self::Projection(l) => &l.descriptor.name,
            Self::Subscription(l) => &l.descriptor.name,
        }
    }

    /// Its declared version.
    pub fn version(&self) -> u32 {
        match self {
            Self::Projection(l) => l.descriptor.version,
            Self::Subscription(l) => l.descriptor.version,
        }
    }

    /// The event types it handles.
    pub fn event_types(&self) -> &[String] {
        match self {
            Self::Projection(l) => &l.descriptor.event_types,
            Self::Subscription(l) => &l.descriptor.event_types,
        }
    }

    /// Hex SHA-256 of its wasm.
    pub fn sha256(&self) -> &str {
        match self {
            Self::Projection(l) => &l.sha256,
            Self::Subscription(l) => &l.sha256,
        }
    }

    /// Whether its compiled artifact came from the cache.
    pub fn from_cache(&self) -> bool {
        match self {
            Self::Projection(l) => l.from_cache,
            Self::Subscription(l) => l.from_cache,
        }
    }

    /// Time spent compiling (or loading the artifact) and validating.
    pub fn load_time(&self) -> Duration {
        match self {
            Self::Projection(l) => l.load_time,
            Self::Subscription(l) => l.load_time,
        }
    }

    /// Runs it under other limits (its team's) from now on.
    pub fn set_limits(&mut self, limits: super::Limits) {
        match self {
            Self::Projection(l) => l.limits = limits,
            Self::Subscription(l) => l.limits = limits,
        }
    }

    /// Makes its instances under `slots` (its team's) from now on.
    pub fn set_slots(&mut self, slots: super::InstanceSlots) {
        match self {
            Self::Projection(l) => l.slots = Some(slots),
            Self::Subscription(l) => l.slots = Some(slots),
        }
    }

    /// Which kind it is.
    pub fn kind(&self) -> ComponentKind {
        match self {
            Self::Projection(_) => ComponentKind::Projection,
            Self::Subscription(_) => ComponentKind::Subscription,
        }
    }
}

impl ComponentKind {
    /// The registry's name for the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Projection => "projection",
            Self::Subscription => "subscription",
        }
    }
}
