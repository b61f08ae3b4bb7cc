//! Deterministic help-desk workloads (seed 001): incidents that are logged,
//! categorised, prioritised, assigned, resolved, acknowledged and closed.

use serde_json::{Value, json};

/// A small xorshift generator: the same seed gives the same workload.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// The events of one incident's life, 1 to 12 of them.
pub fn incident(rng: &mut Rng, n: usize) -> Vec<(String, Value)> {
    let person = |rng: &mut Rng| format!("agent-{}", rng.below(40));
    let mut out = vec![(
        "IncidentLogged".to_owned(),
        json!({
            "customer_id": format!("customer-{}", rng.below(300)),
            "contact": {"name": format!("Contact {n}"), "email": format!("c{n}@example.com"), "phone": null},
            "description": format!("Printer {n} is on fire"),
            "logged_by": person(rng),
        }),
    )];
    let len = 8 + rng.below(5) as usize;
    while out.len() < len {
        let step = out.len();
        let event = match step {
            1 | 5 => (
                "IncidentCategorised",
                json!({"category": rng.pick(&["Software", "Hardware", "Network", "Database"]), "categorised_by": person(rng)}),
            ),
            2 | 4 | 6 => (
                "IncidentPrioritised",
                json!({"priority": rng.pick(&["Critical", "High", "Medium", "Low"]), "prioritised_by": person(rng)}),
            ),
            3 | 7 => ("AgentAssignedToIncident", json!({"agent_id": person(rng)})),
            8 => (
                "IncidentResolved",
                json!({"resolution": rng.pick(&["Fixed", "Workaround", "NotAnIncident"]), "resolved_by": person(rng)}),
            ),
            9 => (
                "ResolutionAcknowledgedByCustomer",
                json!({"acknowledged_by": format!("customer-{}", rng.below(300))}),
            ),
            _ => ("IncidentClosed", json!({"closed_by": person(rng)})),
        };
        out.push((event.0.to_owned(), event.1));
    }
    out
}

/// `streams` incidents named `incident-<n>`, with their events.
pub fn workload(seed: u64, streams: usize) -> Vec<(String, Vec<(String, Value)>)> {
    incidents(seed).take(streams).collect()
}

/// The incidents of [`workload`] without end, made as they are taken.
pub fn incidents(seed: u64) -> impl Iterator<Item = (String, Vec<(String, Value)>)> {
    let mut rng = Rng::new(seed);
    (0..).map(move |n| (format!("incident-{n:05}"), incident(&mut rng, n)))
}

/// An SDK event for the native harness.
pub fn sdk_event(
    sequence: i64,
    stream: &str,
    version: u64,
    event_type: &str,
    data: &Value,
) -> refract_guest::Event {
    refract_guest::Event {
        sequence: sequence as u64,
        stream_id: stream.to_owned(),
        stream_version: version,
        event_type: event_type.to_owned(),
        data: data.to_string(),
        metadata: "{}".to_owned(),
        tenant: None,
        timestamp: 0,
    }
}
