//! One value per team, made on first use: per-team budgets (the service's read and
//! upload permits and instance slots, the daemon's turns at the store). Teams come
//! from the config and the caller's token, so the map is bounded by the configured
//! teams.

use std::collections::HashMap;
use std::sync::Mutex;

/// A value of type `T` per team.
pub(crate) struct PerTeam<T>(Mutex<HashMap<String, T>>);

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
