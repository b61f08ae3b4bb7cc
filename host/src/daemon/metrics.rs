//! Where an agent's time goes while it works through a backlog, logged when it
//! catches up: the first thing to read when a projection is slow.

use std::time::{Duration, Instant};

use crate::store::ProjectionKey;

/// The phases of one page.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Phase {
    Read,
    Slice,
    Load,
    Apply,
    Commit,
}

/// Bursts of at least this many events are logged at info level.
const REPORTED_BURST: u64 = 1000;

/// Totals of one burst of work (from idle to caught up).
#[derive(Debug, Default)]
pub(crate) struct Burst {
    started: Option<Instant>,
    events: u64,
    pages: u64,
    spent: [Duration; 5],
}

impl Burst {
    /// Adds time spent in a phase (for async phases timed by the caller).
    pub fn add(&mut self, phase: Phase, d: Duration) {
        self.started.get_or_insert_with(|| Instant::now() - d);
        self.spent[phase as usize] += d;
    }

    /// Counts a projected page.
    pub fn page(&mut self, events: usize) {
        self.pages += 1;
        self.events += events as u64;
    }

    /// Logs the burst if it projected anything, and starts a new one.
    pub fn finish(&mut self, key: &ProjectionKey) {
        let Some(started) = self.started.take() else {
            return;
        };
        if self.events > 0 {
            let wall = started.elapsed();
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            let [read, slice, load, apply, commit] = self.spent;
            macro_rules! report {
                ($level:expr) => {
                    tracing::event!(
                        $level,
                        projection = %key,
                        events = self.events,
                        pages = self.pages,
                        events_per_s = (self.events as f64 / wall.as_secs_f64().max(1e-9)) as u64,
                        wall_ms = ms(wall) as u64,
                        read_ms = ms(read) as u64,
                        slice_ms = ms(slice) as u64,
                        load_ms = ms(load) as u64,
                        apply_ms = ms(apply) as u64,
                        commit_ms = ms(commit) as u64,
                        "caught up"
                    )
                };
            }
            // A daemon keeping up with a trickle of appends catches up all the time:
            // only bursts worth a look reach the info log.
            if self.events >= REPORTED_BURST || wall >= Duration::from_secs(1) {
                report!(tracing::Level::INFO);
            } else {
                report!(tracing::Level::DEBUG);
            }
        }
        *self = Self::default();
    }
}
