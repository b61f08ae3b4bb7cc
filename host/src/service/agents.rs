//! Running versions: each one's agent started under its team's limits and instance
//! slots, with its settings and what the lifecycle decided for it.

use std::sync::Arc;

use super::Refract;
use crate::config::Config;
use crate::daemon::SubscriptionEnv;
use crate::runtime::{Lifecycle, Loaded};
use crate::store::ProjectionKey;

impl Refract {
    /// Starts a stopped version again with the code it ran before (a replacement of
    /// its code failed): what served keeps serving.
    pub(super) async fn run_previous(&self, key: ProjectionKey, team: &str) {
        let previous = self.loaded_components().get(&key).cloned();
        if let Some(previous) = previous {
            self.run(key, team, previous).await;
        }
    }

    /// Starts the agent of `team`'s version `key` (either kind) under the team's
    /// limits, and remembers its component. A subscription is told first what its
    /// name's other versions mean for its effects.
    pub(super) async fn run(&self, key: ProjectionKey, team: &str, mut loaded: Loaded) {
        self.under_team(team, &mut loaded);
        // With several nodes, whoever (re)starts a version takes its lease from
        // wherever it is: the holder's commits fail from here on.
        if !self.take_lease(&key).await {
            self.loaded_components().insert(key, loaded);
            return;
        }
        if self.store.cluster().and_then(|c| c.node()).is_some() {
            self.sync_operator_pause(&key).await;
        }
        if self.keep_paused(&key) {
            self.loaded_components().insert(key, loaded);
            return;
        }
        match &loaded {
            // A live version folds on read: nothing to run.
            Loaded::Projection(l)
                if self.lifecycle_for(&key, &l.descriptor, true) == Lifecycle::Live =>
            {
                self.daemon.stop_local(&key).await;
            }
            Loaded::Projection(l) => {
                let policy = Config::error_policy(self.components.get(&key.name));
                match self.lifecycle_for(&key, &l.descriptor, false) {
                    Lifecycle::Inline => self.daemon.start_inline(key.clone(), l, policy),
                    _ => self.daemon.start_projection(key.clone(), l, policy),
                }
            }
            Loaded::Subscription(l) => {
                let catch_up = l.descriptor.effects_during_catch_up;
                let hold = match self.lifecycle.hold(&key, catch_up).await {
                    Ok(hold) => hold,
                    Err(e) => {
                        // As an agent that cannot read where it starts: not running.
                        tracing::error!(subscription = %key, "cannot start: {e}");
                        self.daemon.stop_local(&key).await;
                        self.loaded_components().insert(key, loaded);
                        return;
                    }
                };
                let config = self.components.get(&key.name);
                let env = SubscriptionEnv {
                    team: team.into(),
                    grants: self.grants.clone(),
                    settings: Arc::new(config.map(|c| c.settings.clone()).unwrap_or_default()),
                    outbox: self.outbox.clone(),
                    policy: Config::error_policy(config),
                    emit_budget: self.teams.team(team).emits.unwrap_or(self.emits),
                    rates: self.rates.clone(),
                    others_reached: hold.others_reached,
                    standby: hold.standby,
                };
                self.daemon.start_subscription(key.clone(), l, env);
            }
        }
        self.loaded_components().insert(key, loaded);
    }

    /// Makes `loaded` run under `team`'s limits and instance slots.
    pub(super) fn under_team(&self, team: &str, loaded: &mut Loaded) {
        if let Some(mut limits) = self.teams.team(team).limits {
            // The engine's stack limit is the one that applies (and is quoted).
            limits.max_stack_bytes = self.runtime.limits().max_stack_bytes;
            loaded.set_limits(limits);
        }
        loaded.set_slots(self.slots_of(team));
    }

    /// `team`'s instance slots: its instances at once, whatever its components do.
    fn slots_of(&self, team: &str) -> crate::runtime::InstanceSlots {
        self.slots.get(team, || {
            crate::runtime::InstanceSlots::new(team, self.teams.max_instances(team))
        })
    }
}
