//! Promoting a version to live (the live one goes to standby, so a rollback is
//! another promote), by hand or by a watcher once it has caught up.

use super::{Lifecycle, LifecycleError, VersionState};
use crate::store::{ComponentRecord, Components, ProjectionKey};

impl Lifecycle {
    /// Makes `target` live and the name's live version standby. A version still
    /// catching up is refused unless `force`. The caller holds its team's deploy lock.
    pub async fn promote(
        &self,
        target: &ComponentRecord,
        force: bool,
    ) -> Result<(), LifecycleError> {
        let (name, version) = (&target.key.name, target.key.version);
        match VersionState::parse(&target.state) {
            VersionState::Live => return Ok(()),
            VersionState::Retired => {
                return Err(LifecycleError::Retired {
                    name: name.clone(),
                    version,
                });
            }
            VersionState::CatchingUp if !force => {
                let lag =
                    self.store.head().await? - self.store.progress(&target.key).await?.position;
                if lag > 0 {
                    return Err(LifecycleError::NotCaughtUp {
                        name: name.clone(),
                        version,
                        lag,
                    });
                }
            }
            _ => {}
        }
        let mut changes = vec![(target.key.clone(), VersionState::Live)];
        changes.extend(
            self.store
                .components_where(Components::Name(name))
                .await?
                .iter()
                .filter(|c| c.key != target.key)
                .filter(|c| VersionState::parse(&c.state) == VersionState::Live)
                .map(|c| (c.key.clone(), VersionState::Standby)),
        );
        self.set_states(&changes).await?;
        tracing::info!(projection = %target.key, "promoted to live");
        Ok(())
    }

    /// Watches a version deployed with `auto_promote` and promotes it once it has
    /// caught up, unless someone changed its state first.
    pub fn auto_promote(&self, key: ProjectionKey) {
        let this = self.clone();
        tokio::spawn(async move {
            let store = &this.store;
            let mut head = store.watch_head();
            loop {
                let state = match store.component(&key).await {
                    Ok(c) => c.map(|c| VersionState::parse(&c.state)),
                    Err(e) => {
                        tracing::warn!(projection = %key, "auto-promote: {e}");
                        None
                    }
                };
                if state != Some(VersionState::CatchingUp) {
                    return;
                }
                let caught_up = match (store.head().await, store.progress(&key).await) {
                    (Ok(h), Ok(p)) => p.position >= h,
                    _ => false,
                };
                if caught_up {
                    let _one_at_a_time = this.lock.of_name(&key.name).await;
                    match this.promote_key(&key).await {
                        Ok(()) => tracing::info!(projection = %key, "auto-promoted: caught up"),
                        Err(e) => tracing::warn!(projection = %key, "auto-promote: {e}"),
                    }
                    return;
                }
                tokio::select! {
                    _ = head.changed() => {}
                    _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                }
            }
        });
    }

    /// Promotes the version `key` as registered now (not forced).
    async fn promote_key(&self, key: &ProjectionKey) -> Result<(), String> {
        let target = self.store.component(key).await.map_err(|e| e.to_string())?;
        // Registered under its own team's namespace: found as a promote call finds it.
        let target = target
            .filter(|c| c.team == crate::teams::team_of(&key.name))
            .ok_or_else(|| format!("projection {} version {} not found", key.name, key.version))?;
        self.promote(&target, false)
            .await
            .map_err(|e| e.to_string())
    }
}
