//! One value per team, made on first use: the service's per-team budgets (read
//! permits, upload permits, instance slots). Teams come from the config and the
//! caller's token, so the map is bounded by the configured teams.

use std::collections::HashMap;
use std::sync::Mutex;

/// A value of type `T` per team.
pub(super) struct PerTeam<T>(Mutex<HashMap<String, T>>);

impl<T> Default for PerTeam<T> {
    fn default() -> Self {
        Self(Mutex::default())
    }
}

impl<T: Clone> PerTeam<T> {
    /// `team`'s value, made by `make` the first time.
    pub fn get(&self, team: &str, make: impl FnOnce() -> T) -> T {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(team.to_owned()).or_insert_with(make).clone()
    }
}
