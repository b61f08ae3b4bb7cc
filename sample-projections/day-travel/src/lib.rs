//! `day-travel`: what happened on each day across every trip (seed 004's
//! `DayTravel`).
//!
//! It shows *identity* and *fan-out*: trips are streams, but the documents are days
//! (`day-{day}`). A `Travel` event carries movements and stops, each dated; they are
//! fanned out as child events and each counts in the document of its own day, so a
//! trip that crosses midnight adds to two days with one event.

use refract_guest::{Documents, Envelope, Projection};
use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;
mod workload;

pub use workload::{WorkloadEvent, workload};

/// Which way a movement went.
///
/// An enum rather than a string so that an unknown direction is a decode error naming
/// its event, not a panic or a distance quietly dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum Direction {
    North,
    South,
    East,
    West,
}

/// A leg of a `Travel`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Movement {
    /// The day it happened on, which may be after the `Travel`'s own day.
    pub day: u32,
    /// Which way.
    pub direction: Direction,
    /// How far.
    pub distance: u32,
}

/// A place a `Travel` stopped at.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Stop {
    /// The day it happened on.
    pub day: u32,
    /// Where.
    pub place: String,
}

/// The events handled; each variant name is an event type, except the
/// `#[serde(skip)]` children, which only [`Projection::fan_out`] makes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub enum TripEvent {
    /// A trip began.
    TripStarted {
        /// On this day.
        day: u32,
    },
    /// A trip finished.
    TripEnded {
        /// On this day.
        day: u32,
    },
    /// A stretch of a trip: its movements and stops are folded one by one.
    Travel {
        /// The day the stretch was logged on.
        day: u32,
        /// The legs, each on its own day.
        #[serde(default)]
        movements: Vec<Movement>,
        /// The stops, each on its own day.
        #[serde(default)]
        stops: Vec<Stop>,
    },
    /// A child of `Travel`: one movement.
    #[serde(skip)]
    Moved(Movement),
    /// A child of `Travel`: one stop.
    #[serde(skip)]
    Stopped(Stop),
}

impl TripEvent {
    /// The day the event counts in.
    pub fn day(&self) -> u32 {
        match self {
            TripEvent::TripStarted { day }
            | TripEvent::TripEnded { day }
            | TripEvent::Travel { day, .. } => *day,
            TripEvent::Moved(m) => m.day,
            TripEvent::Stopped(s) => s.day,
        }
    }
}

/// The id of a day's document.
pub fn day_id(day: u32) -> String {
    format!("day-{day}")
}

/// One day's document, `day-{day}`: everything every trip did that day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Day {
    /// The day.
    pub day: u32,
    /// Trips started.
    pub started: u64,
    /// Trips ended.
    pub ended: u64,
    /// Distance travelled north.
    pub north: u64,
    /// Distance travelled south.
    pub south: u64,
    /// Distance travelled east.
    pub east: u64,
    /// Distance travelled west.
    pub west: u64,
    /// Stops made.
    pub stops: u64,
}

/// The projection.
pub struct DayTravel;

impl Projection for DayTravel {
    type Event = TripEvent;
    type Doc = Day;
    const NAME: &'static str = "day-travel";
    const VERSION: u32 = 1;
    const DOCUMENTS: Documents = Documents::Custom;

    fn doc_id(event: &Envelope<TripEvent>) -> String {
        day_id(event.event.day())
    }

    fn fan_out(event: &Envelope<TripEvent>) -> Vec<TripEvent> {
        match &event.event {
            TripEvent::Travel {
                movements, stops, ..
            } => movements
                .iter()
                .cloned()
                .map(TripEvent::Moved)
                .chain(stops.iter().cloned().map(TripEvent::Stopped))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn create(_id: &str, event: &Envelope<TripEvent>) -> Option<Day> {
        // The `Travel` itself counts nothing (its children do), so it must not leave
        // an empty day behind when all its movements happened on other days.
        if matches!(event.event, TripEvent::Travel { .. }) {
            return None;
        }
        let mut day = Day {
            day: event.event.day(),
            ..Day::default()
        };
        Self::apply(&mut day, event);
        Some(day)
    }

    fn apply(day: &mut Day, event: &Envelope<TripEvent>) {
        match &event.event {
            TripEvent::TripStarted { .. } => day.started += 1,
            TripEvent::TripEnded { .. } => day.ended += 1,
            TripEvent::Travel { .. } => {}
            TripEvent::Moved(m) => {
                let total = match m.direction {
                    Direction::North => &mut day.north,
                    Direction::South => &mut day.south,
                    Direction::East => &mut day.east,
                    Direction::West => &mut day.west,
                };
                *total += u64::from(m.distance);
            }
            TripEvent::Stopped(_) => day.stops += 1,
        }
    }
}

refract_guest::export_projection!(DayTravel);
