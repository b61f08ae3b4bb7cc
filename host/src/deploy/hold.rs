//! When a subscription's side effects are held because of its name's other
//! versions: for every event another running version already reached (unless it
//! asks for effects during catch-up: that version acted on them), and for every
//! page it handles while it is a standby (only the live version acts). Decided
//! here and handed to the agent as plain values.

use tokio::sync::watch;

use super::{Lifecycle, VersionState};
use crate::store::{Components, Position, ProjectionKey, StoreError};

/// What a subscription agent is told of its name's other versions.
#[derive(Debug, Clone)]
pub struct Hold {
    /// The furthest position another running version of the name reached: events
    /// up to it handle with effects held (0 with effects during catch-up).
    pub others_reached: Position,
    /// Whether the version is a standby now (a newer version was promoted over
    /// it); follows promotes while the agent runs.
    pub standby: watch::Receiver<bool>,
}

impl Lifecycle {
    /// What the agent of `key` about to start is told; read just before it starts.
    pub async fn hold(
        &self,
        key: &ProjectionKey,
        effects_during_catch_up: bool,
    ) -> Result<Hold, StoreError> {
        let versions = self
            .store
            .components_where(Components::Name(&key.name))
            .await?;
        let own = versions.iter().find(|c| c.key == *key);
        let standby = self.standby_flag(key, own.map(|c| VersionState::parse(&c.state)));
        let mut others_reached = 0;
        if !effects_during_catch_up {
            for c in &versions {
                let other = c.key != *key;
                if other && VersionState::parse(&c.state) != VersionState::Retired {
                    let reached = self.store.progress(&c.key).await?.position;
                    others_reached = others_reached.max(reached);
                }
            }
        }
        Ok(Hold {
            others_reached,
            standby,
        })
    }
}
