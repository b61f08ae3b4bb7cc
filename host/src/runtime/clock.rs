//! What a guest sees of time and chance: a virtual monotonic clock that only moves
//! when the guest waits (a wait returns at once and costs CPU time, never the
//! thread's time), a wall clock set from the events being applied, and randomness
//! from a seed chosen per call. A call therefore sees the same time and the same
//! random numbers each time it is replayed, and it can never block its thread where
//! the CPU deadline (epoch interruption) does not reach.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

/// The shared clock and random state of one instance, set at the start of each call.
#[derive(Clone, Default)]
pub(crate) struct GuestClocks {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Virtual monotonic time, in nanoseconds: moves only when the guest waits.
    monotonic: AtomicU64,
    /// Virtual nanoseconds at the start of the current call.
    call_start: AtomicU64,
    /// Wall-clock time of the current call's events, in microseconds since the epoch.
    wall_micros: AtomicI64,
    /// The earliest deadline a pending clock pollable asked for (`u64::MAX`: none).
    wanted: AtomicU64,
    /// SplitMix64 state of the call's random numbers.
    random: AtomicU64,
}

impl GuestClocks {
    /// Fresh clocks: monotonic time 0, wall time the Unix epoch, seed 0.
    pub fn new() -> Self {
        let clocks = Self::default();
        clocks.inner.wanted.store(u64::MAX, Ordering::Relaxed);
        clocks
    }

    /// Starts a call: the wall clock shows `wall_micros` (the events' time), the
    /// monotonic clock goes on from where it was (it never goes back), and random
    /// numbers start again from a seed made of `component` and `spot` (the page's
    /// first event), so a replayed call draws the same numbers.
    pub fn begin_call(&self, component: &str, spot: Option<i64>, wall_micros: i64) {
        let now = self.now();
        self.inner.call_start.store(now, Ordering::Relaxed);
        self.inner.wall_micros.store(wall_micros, Ordering::Relaxed);
        self.inner
            .random
            .store(seed(component, spot), Ordering::Relaxed);
    }

    /// The virtual monotonic time, in nanoseconds.
    pub fn now(&self) -> u64 {
        self.inner.monotonic.load(Ordering::Relaxed)
    }

    /// Moves the virtual clock forward to `deadline` (never back).
    pub fn advance_to(&self, deadline: u64) {
        self.inner.monotonic.fetch_max(deadline, Ordering::Relaxed);
    }

    /// Forgets the deadlines asked for so far (before a poll).
    pub fn clear_wanted(&self) {
        self.inner.wanted.store(u64::MAX, Ordering::Relaxed);
    }

    /// Notes that a clock pollable waits for `deadline`.
    pub fn want(&self, deadline: u64) {
        self.inner.wanted.fetch_min(deadline, Ordering::Relaxed);
    }

    /// The earliest deadline a clock pollable waited for since [`clear_wanted`].
    ///
    /// [`clear_wanted`]: Self::clear_wanted
    pub fn wanted(&self) -> Option<u64> {
        Some(self.inner.wanted.load(Ordering::Relaxed)).filter(|&t| t != u64::MAX)
    }

    /// The guest's monotonic clock.
    pub fn monotonic(&self) -> VirtualMonotonic {
        VirtualMonotonic(self.clone())
    }

    /// The guest's wall clock.
    pub fn wall(&self) -> EventWallClock {
        EventWallClock(self.clone())
    }

    /// The guest's random numbers.
    pub fn random(&self) -> SeededRandom {
        SeededRandom(self.clone())
    }

    /// The next random number of the call (SplitMix64).
    fn next_u64(&self) -> u64 {
        let state = self
            .inner
            .random
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A seed from the component's name and the page's first event.
fn seed(component: &str, spot: Option<i64>) -> u64 {
    let mut h = Sha256::new();
    h.update(component.as_bytes());
    h.update(spot.unwrap_or(-1).to_le_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// The insecure-seed a component gets: fixed per component, so replays agree.
pub(crate) fn insecure_seed(component: &str) -> u128 {
    let digest = Sha256::digest(component.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(first)
}

/// `wasi:clocks/monotonic-clock` time: virtual, moved only by the guest's waits.
pub(crate) struct VirtualMonotonic(GuestClocks);

impl HostMonotonicClock for VirtualMonotonic {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        self.0.now()
    }
}

/// `wasi:clocks/wall-clock` time: the time of the events being applied, plus the
/// virtual time the guest has waited during the call.
pub(crate) struct EventWallClock(GuestClocks);

impl HostWallClock for EventWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_micros(1)
    }

    fn now(&self) -> Duration {
        let inner = &self.0.inner;
        let micros = inner.wall_micros.load(Ordering::Relaxed).max(0) as u64;
        let waited = self
            .0
            .now()
            .saturating_sub(inner.call_start.load(Ordering::Relaxed));
        Duration::from_micros(micros).saturating_add(Duration::from_nanos(waited))
    }
}

/// `wasi:random` bytes from the call's seed: deterministic, so not secret. A guest
/// that needs secrets has no business in a projection, which must replay exactly.
pub(crate) struct SeededRandom(GuestClocks);

impl rand_core::TryRng for SeededRandom {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok((self.0.next_u64() >> 32) as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.0.next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.0.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::TryRng;

    #[test]
    fn a_call_replayed_draws_the_same_numbers_and_another_page_others() {
        let clocks = GuestClocks::new();
        let mut rng = clocks.random();
        clocks.begin_call("c@v1", Some(7), 0);
        let first: Vec<u64> = (0..4).map(|_| rng.try_next_u64().unwrap_or(0)).collect();
        clocks.begin_call("c@v1", Some(7), 0);
        let again: Vec<u64> = (0..4).map(|_| rng.try_next_u64().unwrap_or(0)).collect();
        clocks.begin_call("c@v1", Some(8), 0);
        let other: Vec<u64> = (0..4).map(|_| rng.try_next_u64().unwrap_or(0)).collect();
        assert_eq!(first, again);
        assert_ne!(first, other);
        assert_ne!(first[0], first[1]);
    }

    #[test]
    fn the_wall_clock_is_the_events_time_plus_what_the_guest_waited() {
        let clocks = GuestClocks::new();
        clocks.advance_to(5_000);
        clocks.begin_call("c@v1", None, 1_700_000_000_000_000);
        let wall = clocks.wall();
        assert_eq!(wall.now(), Duration::from_secs(1_700_000_000));
        clocks.advance_to(5_000 + 2_000_000_000);
        assert_eq!(wall.now(), Duration::from_secs(1_700_000_002));
        clocks.advance_to(1);
        assert_eq!(clocks.now(), 2_000_005_000, "the clock never goes back");
    }
}
