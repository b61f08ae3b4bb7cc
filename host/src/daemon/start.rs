//! Starting agents: a projection's (with its budget, cache and commit gate) or a
//! subscription's (with its effects' environment), each under its team's turns.

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};

use super::agent::Agent;
use super::commits::{CommitGate, Commits};
use super::{
    Daemon, ErrorPolicy, PageBudget, PageProjector, SubscriptionEnv, cache, effects, subscription,
};
use crate::runtime::{Guest, LoadedComponent, LoadedSubscription, Subscriber};
use crate::store::ProjectionKey;

impl Daemon {
    /// Starts the agent of one deployed component (replacing a running one).
    pub fn start(&self, loaded: &LoadedComponent) {
        let key = ProjectionKey {
            name: loaded.descriptor.name.clone(),
            version: loaded.descriptor.version,
        };
        self.start_as(key, loaded);
    }

    /// Starts the agent of a deployed projection under its registry key (a team's
    /// components have team-qualified names).
    pub fn start_as(&self, key: ProjectionKey, loaded: &LoadedComponent) {
        self.start_projection(key, loaded, ErrorPolicy::default());
    }

    /// Starts the agent of a deployed projection under its registry key, meeting
    /// failing events with `policy`.
    pub fn start_projection(
        &self,
        key: ProjectionKey,
        loaded: &LoadedComponent,
        policy: ErrorPolicy,
    ) {
        self.start_loaded(key, loaded, policy, false);
    }

    /// Starts the agent of an inline version: its team's appends move its progress
    /// too, so its commits land only from where they were projected from.
    pub fn start_inline(&self, key: ProjectionKey, loaded: &LoadedComponent, policy: ErrorPolicy) {
        self.start_loaded(key, loaded, policy, true);
    }

    fn start_loaded(
        &self,
        key: ProjectionKey,
        loaded: &LoadedComponent,
        policy: ErrorPolicy,
        shared: bool,
    ) {
        let mut guest = Guest::new(loaded, key.to_string()).with_page_size(self.page_size);
        let lookups = loaded.descriptor.uses_lookups();
        if lookups {
            guest.set_lookup(Some(super::lookup::StoreLookup::source(
                self.store.clone(),
                key.clone(),
            )));
        }
        let (types, page_size) = (
            loaded.descriptor.event_types.clone(),
            self.page_size_for(&loaded.descriptor),
        );
        self.spawn(
            key,
            types,
            Box::new(guest),
            (page_size, shared, lookups),
            policy,
        );
    }

    /// Starts the agent of one deployed subscription (replacing a running one).
    pub fn start_subscription(
        &self,
        key: ProjectionKey,
        loaded: &LoadedSubscription,
        env: SubscriptionEnv,
    ) {
        let d = &loaded.descriptor;
        let stop = watch::channel(false).0;
        let agent = subscription::SubscriptionAgent {
            counters: self.counters_of(&key),
            subscriber: Arc::new(Mutex::new(Subscriber::new(loaded, key.to_string()))),
            deadline: loaded.limits.call_timeout(),
            slots: loaded.slots.clone(),
            turns: self.turns.of(&env.team),
            key: key.clone(),
            team: env.team.clone(),
            event_types: d.event_types.clone().into(),
            page_size: d.page_size(self.page_size),
            page_bytes: self.page_bytes,
            shutdown: stop.subscribe(),
            env: effects::EffectsEnv {
                access: self.teams.access(&env.team),
                store: self.store.clone(),
                runtime: tokio::runtime::Handle::current(),
                name: key.name.clone(),
                team: env.team,
                grants: env.grants,
                settings: env.settings,
                max_event_bytes: self.max_event_bytes,
                emit_budget: env.emit_budget,
                rates: env.rates,
            },
            outbox: env.outbox,
            policy: env.policy,
            others_reached: env.others_reached,
            standby: env.standby,
            over_budget: Default::default(),
        };
        self.install(key, stop, None, |_| agent.run());
    }

    /// Starts an agent that drives any projector over the version's documents and
    /// progress (which must have been prepared in the store), at the configured
    /// page size.
    pub fn start_with(
        &self,
        key: ProjectionKey,
        event_types: Vec<String>,
        projector: Box<dyn PageProjector>,
    ) {
        self.start_with_policy(key, event_types, projector, ErrorPolicy::default());
    }

    /// Like [`Daemon::start_with`], with an error policy.
    pub fn start_with_policy(
        &self,
        key: ProjectionKey,
        event_types: Vec<String>,
        projector: Box<dyn PageProjector>,
        policy: ErrorPolicy,
    ) {
        self.spawn(
            key,
            event_types,
            projector,
            (self.page_size, false, false),
            policy,
        );
    }

    fn spawn(
        &self,
        key: ProjectionKey,
        event_types: Vec<String>,
        projector: Box<dyn PageProjector>,
        (page_size, shared, lookups): (usize, bool, bool),
        policy: ErrorPolicy,
    ) {
        let stop = watch::channel(false).0;
        let (control, requests) = mpsc::channel(4);
        let limits = projector.limits();
        let budget = PageBudget {
            events: page_size.max(1),
            bytes: self.page_bytes,
            doc_bytes: limits.max_result_bytes,
        };
        let team = crate::teams::team_of(&key.name);
        let streams = self.teams.access(team).read;
        let mut agent = Agent {
            streams,
            turns: self.turns.of(team),
            deadline: limits.call_timeout(),
            slots: projector.slots(),
            projector: Arc::new(Mutex::new(projector)),
            key: key.clone(),
            store: self.store.clone(),
            event_types: event_types.into(),
            budget,
            policy,
            shutdown: stop.subscribe(),
            control: requests,
            cache: cache::DocCache::new(self.cache_bytes),
            burst: Default::default(),
            commits: Commits::new(CommitGate::default()),
            counters: self.counters_of(&key),
            position: None,
            limit: budget.events,
            ahead: None,
            retry: crate::retry::Retry::new(policy.retry(super::agent::PAGE_BACKOFF)),
            pending: None,
            stored_at: std::time::Instant::now(),
            doc_set: None,
            shared,
            lookups,
            committed: 0,
            rebuild_events: self.rebuild_events,
        };
        self.install(key, stop, Some(control), move |gate| {
            agent.commits = Commits::new(gate);
            agent.run()
        });
    }
}
