//! Deterministic help-desk events (seed 001), generated one stream at a time so a
//! million events never sit in memory at once.
//!
//! Each stream is one incident: logged, then categorised, prioritised and assigned
//! (the end-to-end tests' lifecycle, carried on for as long as the stream is), and at
//! the end resolved, acknowledged and closed. Every stream has its own generator
//! seeded from seed 001, so any stream can be regenerated alone to check its document.

use refract::runtime::Event;
use refract::store::{ExpectedVersion, NewEvent};
use serde_json::json;

/// The seed of every workload.
pub const SEED: u64 = 1;

/// A small xorshift generator: the same seed gives the same events.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next raw number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// The next number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    /// Shuffles `items` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// The id of stream `n` of a workload with the given prefix.
pub fn stream_id(prefix: &str, n: usize) -> String {
    format!("{prefix}-{n:05}")
}

/// One incident stream's events, produced on demand.
#[derive(Debug, Clone)]
pub struct Incident {
    rng: Rng,
    n: usize,
    len: usize,
    step: usize,
}

impl Incident {
    /// Stream `n` (of any workload) with `len` events; seeded from [`SEED`] and `n`.
    pub fn new(n: usize, len: usize) -> Self {
        let mut seeder = Rng::new(SEED ^ ((n as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        seeder.next_u64();
        Self {
            rng: Rng::new(seeder.next_u64()),
            n,
            len: len.max(1),
            step: 0,
        }
    }

    /// Events produced so far (the stream's version).
    pub fn version(&self) -> u64 {
        self.step as u64
    }

    /// The next event as (type, data JSON); after the last one it keeps producing
    /// prioritisations (for open-ended loads).
    pub fn next_event(&mut self) -> (&'static str, String) {
        let (step, len, n) = (self.step, self.len, self.n);
        self.step += 1;
        let rng = &mut self.rng;
        let person = |rng: &mut Rng| format!("agent-{}", rng.below(40));
        let closing = len >= 4 && step < len;
        let (ty, data) = match step {
            0 => (
                "IncidentLogged",
                json!({
                    "customer_id": format!("customer-{}", rng.below(300)),
                    "contact": {"name": format!("Contact {n}"), "email": format!("c{n}@example.com"), "phone": null},
                    "description": format!("Printer {n} is on fire"),
                    "logged_by": person(rng),
                }),
            ),
            s if closing && s == len - 3 => (
                "IncidentResolved",
                json!({"resolution": rng.pick(&["Fixed", "Workaround", "NotAnIncident"]), "resolved_by": person(rng)}),
            ),
            s if closing && s == len - 2 => (
                "ResolutionAcknowledgedByCustomer",
                json!({"acknowledged_by": format!("customer-{}", rng.below(300))}),
            ),
            s if closing && s == len - 1 => ("IncidentClosed", json!({"closed_by": person(rng)})),
            s => {
                // Steps 1..=7 follow the tests' lifecycle; later ones pick at random.
                let kind = match s {
                    1 | 5 => 0,
                    2 | 4 | 6 => 1,
                    3 | 7 => 2,
                    _ => rng.below(3),
                };
                match kind {
                    0 => (
                        "IncidentCategorised",
                        json!({"category": rng.pick(&["Software", "Hardware", "Network", "Database"]), "categorised_by": person(rng)}),
                    ),
                    1 => (
                        "IncidentPrioritised",
                        json!({"priority": rng.pick(&["Critical", "High", "Medium", "Low"]), "prioritised_by": person(rng)}),
                    ),
                    _ => ("AgentAssignedToIncident", json!({"agent_id": person(rng)})),
                }
            }
        };
        (ty, data.to_string())
    }

    /// The next `count` events as events to append.
    pub fn next_batch(&mut self, count: usize) -> Vec<NewEvent> {
        (0..count)
            .map(|_| {
                let (ty, data) = self.next_event();
                NewEvent {
                    event_type: ty.to_owned(),
                    data,
                    metadata: "{}".to_owned(),
                }
            })
            .collect()
    }

    /// What to expect of the stream before the next append.
    pub fn expected(&self) -> ExpectedVersion {
        match self.step {
            0 => ExpectedVersion::NoStream,
            v => ExpectedVersion::Exact(v as u64),
        }
    }
}

/// Every event of stream `n` as the SDK sees it (sequences are page order, not the
/// store's): for checking a projected document against a native fold.
pub fn sdk_events(prefix: &str, n: usize, len: usize) -> Vec<refract_guest::Event> {
    let id = stream_id(prefix, n);
    let mut inc = Incident::new(n, len);
    (1..=len as u64)
        .map(|v| {
            let (ty, data) = inc.next_event();
            refract_guest::Event {
                sequence: v,
                stream_id: id.clone(),
                stream_version: v,
                event_type: ty.to_owned(),
                data,
                metadata: "{}".to_owned(),
                tenant: None,
                timestamp: 0,
            }
        })
        .collect()
}

/// The order the dataset is appended in: rounds in which every stream (in a shuffled
/// order) gets its next `chunk` events. Yields (stream number, events in this append).
pub fn rounds(
    streams: usize,
    per_stream: usize,
    chunk: usize,
) -> impl Iterator<Item = (usize, usize)> {
    let chunk = chunk.max(1);
    let mut rng = Rng::new(SEED);
    let rounds = per_stream.div_ceil(chunk);
    (0..rounds).flat_map(move |r| {
        let mut order: Vec<usize> = (0..streams).collect();
        rng.shuffle(&mut order);
        let count = chunk.min(per_stream - r * chunk);
        order.into_iter().map(move |s| (s, count))
    })
}

/// Events (as the host hands them to guests) of `streams` streams of
/// `per_stream` events, interleaved like the dataset; for calling guests directly.
pub fn recorded(prefix: &str, streams: usize, per_stream: usize, chunk: usize) -> Vec<Event> {
    let mut gens: Vec<Incident> = (0..streams).map(|n| Incident::new(n, per_stream)).collect();
    let mut out = Vec::with_capacity(streams * per_stream);
    for (s, count) in rounds(streams, per_stream, chunk) {
        let id = stream_id(prefix, s);
        for _ in 0..count {
            let (ty, data) = gens[s].next_event();
            out.push(Event {
                sequence: out.len() as i64 + 1,
                stream_id: id.clone(),
                stream_version: gens[s].version(),
                event_type: ty.to_owned(),
                data,
                metadata: "{}".to_owned(),
                tenant: None,
                timestamp: 1_700_000_000_000_000 + out.len() as i64,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_well_formed() {
        let a = sdk_events("incident", 7, 100);
        let b = sdk_events("incident", 7, 100);
        assert_eq!(a, b);
        assert_eq!(a[0].event_type, "IncidentLogged");
        assert_eq!(a[99].event_type, "IncidentClosed");
        assert_ne!(a, sdk_events("incident", 8, 100));
        let total: usize = rounds(30, 25, 10).map(|(_, c)| c).sum();
        assert_eq!(total, 750);
    }
}
