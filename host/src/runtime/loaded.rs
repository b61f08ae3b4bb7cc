//! Compiled, validated components: a projection's, a subscription's, and either kind
//! with what the registry needs of both. Plain data over the linked forms of the WIT
//! versions (`versions`, `subscriber_versions`); made by the façade (`load`), run by
//! `Guest` and `Subscriber`.

use std::time::Duration;

use super::limits::Limits;
use super::slots::InstanceSlots;
use super::subscriber_versions::SubscriberPre;
use super::subscription_types::SubscriptionDescriptor;
use super::types::{ComponentKind, Descriptor};
use super::versions::ProjectorPre;

/// A compiled, validated component ready to be instantiated: its linked form `P`
/// (of its WIT version) and what it says it is, `D`.
#[derive(Clone)]
pub struct Compiled<P, D> {
    pub(crate) pre: P,
    /// What the component says it is (and which WIT version it was built against).
    pub descriptor: D,
    /// Hex SHA-256 of the wasm bytes.
    pub sha256: String,
    /// Whether the compiled artifact came from the cache.
    pub from_cache: bool,
    /// Time spent compiling (or loading the artifact) and validating.
    pub load_time: Duration,
    pub(crate) limits: Limits,
    /// Its team's instance slots (none: unbudgeted, as for tools and benchmarks).
    pub(crate) slots: Option<InstanceSlots>,
}

/// A compiled, validated projection.
pub type LoadedComponent = Compiled<ProjectorPre, Descriptor>;

/// A compiled, validated subscription.
pub type LoadedSubscription = Compiled<SubscriberPre, SubscriptionDescriptor>;

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
    pub fn set_limits(&mut self, limits: Limits) {
        match self {
            Self::Projection(l) => l.limits = limits,
            Self::Subscription(l) => l.limits = limits,
        }
    }

    /// Makes its instances under `slots` (its team's) from now on.
    pub fn set_slots(&mut self, slots: InstanceSlots) {
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
