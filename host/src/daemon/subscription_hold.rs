//! Where a subscription agent starts, and when its side effects are held: for every
//! event at or below its hold mark (the furthest position this version ever
//! committed, so a rewind, rebuild or reload never fires an emit twice; and, unless
//! it asks for effects during catch-up, the furthest another running version of the
//! name reached), and for every page it handles while it is a standby.

use super::subscription::SubscriptionAgent;
use crate::deploy::VersionState;
use crate::store::{Components, Position, RunStatus, StoreError};

impl SubscriptionAgent {
    /// The stored position, and the hold mark: events up to it handle with effects
    /// held.
    pub(super) async fn start(&mut self) -> Result<(Position, Position), StoreError> {
        let progress = self.store().progress(&self.key).await?;
        if progress.status != RunStatus::Running {
            self.store()
                .set_status(&self.key, RunStatus::Running, None)
                .await?;
        }
        let own = self.store().effects_high_water(&self.key).await?;
        let mut others = 0;
        if !self.effects_during_catch_up {
            let versions = self
                .store()
                .components_where(Components::Name(&self.key.name));
            for c in versions.await? {
                let other = c.key != self.key;
                if other && VersionState::parse(&c.state) != VersionState::Retired {
                    others = others.max(self.store().progress(&c.key).await?.position);
                }
            }
        }
        let hold_until = own.max(others);
        tracing::info!(
            subscription = %self.key,
            position = progress.position,
            hold_until,
            high_water = own,
            "subscription agent started"
        );
        Ok((progress.position, hold_until))
    }

    /// Whether the version is a standby now (a newer version was promoted over it):
    /// it then handles with effects held, so only the live version acts.
    pub(super) async fn is_standby(&self) -> Result<bool, StoreError> {
        Ok(self
            .store()
            .component(&self.key)
            .await?
            .is_some_and(|c| VersionState::parse(&c.state) == VersionState::Standby))
    }
}
