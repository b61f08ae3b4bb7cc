//! Each team's append rate (`appends_per_s`, events per second, with a burst of one
//! second's worth): HTTP appends over it are refused (429 `rate_limited`); a
//! subscription's emits over it wait before their page commits (a host condition:
//! the page is not failed, the subscription is slowed to its team's rate).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The append rates of every team that has one (teams without are unlimited).
#[derive(Debug, Default)]
pub struct AppendRates {
    limits: HashMap<String, u32>,
    /// Per team, the time at which its bucket is full again (a GCRA clock).
    full_at: Mutex<HashMap<String, Instant>>,
}

/// An append refused for its team's rate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "team {team} appends at most {rate} events per second (appends_per_s); \
     {events} event(s) now would exceed it: retry in {retry_after_ms} ms"
)]
pub struct RateLimited {
    /// The team.
    pub team: String,
    /// Its rate.
    pub rate: u32,
    /// The events of the refused append.
    pub events: usize,
    /// When the append would fit (never, for an append bigger than the rate).
    pub retry_after_ms: u64,
}

impl AppendRates {
    /// Rates by team name; a rate of 0 is refused in config, so it is not here.
    pub fn new(limits: HashMap<String, u32>) -> Self {
        Self {
            limits,
            full_at: Mutex::new(HashMap::new()),
        }
    }

    /// How long `events` from `team` must wait to fit its rate at `now`; `None`
    /// when the team has no rate. Takes the room when `take` or no wait is needed.
    fn reserve(&self, team: &str, events: usize, now: Instant, take: bool) -> Option<Duration> {
        let rate = *self.limits.get(team)?;
        let cost = Duration::from_secs_f64(events as f64 / f64::from(rate));
        let burst = Duration::from_secs(1);
        let mut all = self.full_at.lock().unwrap_or_else(|p| p.into_inner());
        let full_at = all.entry(team.to_owned()).or_insert(now);
        let start = (*full_at).max(now);
        let after = start + cost;
        let wait = after.saturating_duration_since(now + burst);
        if wait.is_zero() || take {
            *full_at = after;
        }
        Some(wait)
    }

    /// Takes room for an HTTP append of `events`, or refuses it (taking nothing).
    pub fn try_take(&self, team: &str, events: usize) -> Result<(), RateLimited> {
        match self.reserve(team, events, Instant::now(), false) {
            None => Ok(()),
            Some(wait) if wait.is_zero() => Ok(()),
            Some(wait) => Err(RateLimited {
                team: team.to_owned(),
                rate: self.limits[team],
                events,
                retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }

    /// Takes room for `events` emitted by `team`'s subscription, and says how long
    /// to wait before committing them (zero when they fit now).
    pub fn take_for_emits(&self, team: &str, events: usize) -> Duration {
        if events == 0 {
            return Duration::ZERO;
        }
        self.reserve(team, events, Instant::now(), true)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_of_burst_then_the_rate() {
        let rates = AppendRates::new(HashMap::from([("a".to_owned(), 100)]));
        assert!(rates.try_take("a", 60).is_ok());
        assert!(rates.try_take("a", 40).is_ok());
        let e = rates.try_take("a", 10).unwrap_err();
        assert_eq!((e.rate, e.events), (100, 10));
        assert!((90..=100).contains(&e.retry_after_ms), "{e}");
        assert!(e.to_string().contains("appends_per_s"), "{e}");
        // Others are not held by a's rate.
        assert!(rates.try_take("b", 1_000_000).is_ok());
        // Emits wait instead, and the wait grows with what was taken.
        let w1 = rates.take_for_emits("a", 50);
        let w2 = rates.take_for_emits("a", 50);
        assert!(
            w1 >= Duration::from_millis(490) && w1 <= Duration::from_millis(510),
            "{w1:?}"
        );
        assert!(w2 >= Duration::from_millis(990), "{w2:?}");
        assert_eq!(rates.take_for_emits("b", 1_000_000), Duration::ZERO);
        // An append bigger than a second's worth never fits.
        let big = AppendRates::new(HashMap::from([("a".to_owned(), 10)]));
        assert!(big.try_take("a", 11).is_err());
    }
}
