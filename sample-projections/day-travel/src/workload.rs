//! A deterministic stream of trip events, for tests that append it to a real daemon
//! and compare its documents with the native fold.

use refract_guest::testing::Rng;
use serde_json::{Value, json};

/// One event to append: (stream id, event type, data, tenant).
pub type WorkloadEvent = (String, String, Value, Option<String>);

const DIRECTIONS: [&str; 4] = ["North", "South", "East", "West"];
const PLACES: [&str; 6] = ["Inn", "Ferry", "Market", "Bridge", "Camp", "Harbour"];
/// Trips under way at once: their events interleave, as trips' streams do.
const OPEN_TRIPS: usize = 4;

/// A trip under way: its stream and the day it has reached.
struct Trip {
    stream: String,
    day: u32,
    travels: u32,
}

/// `n` events from `seed`, the same for the same arguments.
///
/// Up to four trips (`trip-{t}`) are under way at once. Each starts on a day from 1 to
/// 30, logs `Travel` stretches whose movements and stops often run into the next day,
/// and ends on the day it has reached. No event has a tenant; every direction is valid.
pub fn workload(seed: u64, n: usize) -> Vec<WorkloadEvent> {
    let mut rng = Rng::new(seed);
    let mut open: Vec<Trip> = Vec::new();
    let mut trips = 0;
    let mut events = Vec::with_capacity(n);
    while events.len() < n {
        if open.is_empty() || (open.len() < OPEN_TRIPS && rng.below(4) == 0) {
            let trip = Trip {
                stream: format!("trip-{trips}"),
                day: 1 + rng.below(30) as u32,
                travels: 0,
            };
            trips += 1;
            events.push(event(&trip.stream, "TripStarted", json!({"day": trip.day})));
            open.push(trip);
            continue;
        }
        let at = rng.below(open.len());
        if open[at].travels > 0 && rng.below(5) == 0 {
            let trip = open.swap_remove(at);
            events.push(event(&trip.stream, "TripEnded", json!({"day": trip.day})));
            continue;
        }
        let trip = &mut open[at];
        let logged_on = trip.day;
        let mut movements = Vec::new();
        let mut stops = Vec::new();
        for _ in 0..1 + rng.below(4) {
            // Past midnight now and then: the rest of the stretch is on the next day.
            if rng.below(6) == 0 {
                trip.day += 1;
            }
            movements.push(json!({
                "day": trip.day,
                "direction": DIRECTIONS[rng.below(4)],
                "distance": 1 + rng.below(50),
            }));
            if rng.below(3) == 0 {
                stops.push(json!({"day": trip.day, "place": PLACES[rng.below(PLACES.len())]}));
            }
        }
        trip.travels += 1;
        events.push(event(
            &trip.stream,
            "Travel",
            json!({"day": logged_on, "movements": movements, "stops": stops}),
        ));
    }
    events
}

fn event(stream: &str, event_type: &str, data: Value) -> WorkloadEvent {
    (stream.to_owned(), event_type.to_owned(), data, None)
}
