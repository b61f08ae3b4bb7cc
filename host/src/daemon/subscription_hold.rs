//! Where a subscription agent starts, and when its side effects are held: for every
//! event at or below its hold mark (the furthest position this version ever
//! committed, so a rewind, rebuild or reload never fires an emit twice; and the
//! furthest its name's other versions reached, as it was told), and for every page
//! it handles while it is told it is a standby. What its name's other versions mean
//! for it is decided outside the daemon (in `deploy`) and handed over as values.

use super::subscription::SubscriptionAgent;
use crate::store::{Position, RunStatus, StoreError};

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
        let hold_until = own.max(self.others_reached);
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
    pub(super) fn is_standby(&self) -> bool {
        *self.standby.borrow()
    }
}
