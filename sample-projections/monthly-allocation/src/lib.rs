//! `monthly-allocation`: the hours each employee is allocated per month (seed 004's
//! `MonthlyAllocationProjection` with its custom grouper).
//!
//! It shows *fan-out* standing in for a custom grouper: one `EmployeeAllocated` event
//! lists days that may fall in several months, and is split into one
//! `EmployeeAllocatedInMonth` child per month, each folded into the document
//! `{employee_id}|{month}`. The parent itself goes to no document.
//!
//! A day that is not a real `YYYY-MM-DD` date is not dropped: its hours count in the
//! month [`INVALID_DATE`], so every hour allocated shows up somewhere and bad input is
//! easy to find.

use std::fmt;

use refract_guest::{Documents, Envelope, Projection};
use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;
mod workload;

pub use workload::{WorkloadEvent, workload};

/// The month that allocations on a malformed or impossible day count in.
pub const INVALID_DATE: &str = "invalid-date";

/// The longest employee id accepted, so that `{employee_id}|invalid-date` fits the
/// host's 256-byte limit on document ids.
pub const MAX_EMPLOYEE_ID_LEN: usize = 256 - 1 - INVALID_DATE.len();

/// An employee's id, which starts the id of each of the employee's documents.
///
/// Checked when the event is decoded, so a bad one is an error naming the event: left
/// to the host, an empty or overlong id (or one with control characters) would only be
/// refused as a document id, with no event to blame.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct EmployeeId(String);

impl TryFrom<String> for EmployeeId {
    type Error = String;

    fn try_from(id: String) -> Result<Self, String> {
        if id.is_empty() || id.len() > MAX_EMPLOYEE_ID_LEN || id.chars().any(char::is_control) {
            return Err(format!(
                "employee id {id:?} must be 1 to {MAX_EMPLOYEE_ID_LEN} bytes without control \
                 characters"
            ));
        }
        Ok(Self(id))
    }
}

impl fmt::Display for EmployeeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Hours on one day.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Allocation {
    /// The day, `YYYY-MM-DD`; anything else counts in [`INVALID_DATE`].
    pub day: String,
    /// Hours allocated that day.
    pub hours: u32,
}

/// The events handled; `EmployeeAllocated` is the only event type, its
/// `#[serde(skip)]` child only what [`Projection::fan_out`] makes of it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub enum AllocationEvent {
    /// An employee was allocated hours on some days, maybe in several months.
    EmployeeAllocated {
        /// Who.
        employee_id: EmployeeId,
        /// The days and hours, in any order.
        allocations: Vec<Allocation>,
    },
    /// A child of `EmployeeAllocated`: its allocations in one month.
    #[serde(skip)]
    EmployeeAllocatedInMonth {
        /// Who.
        employee_id: EmployeeId,
        /// `YYYY-MM`, or [`INVALID_DATE`].
        month: String,
        /// The parent's allocations in that month, in the parent's order.
        allocations: Vec<Allocation>,
    },
}

/// One employee's allocation in one month (seed 004's `MonthlyAllocation`); its id is
/// `{employee_id}|{month}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmployeeMonth {
    /// Who.
    pub employee_id: String,
    /// `YYYY-MM`, or [`INVALID_DATE`].
    pub month: String,
    /// Hours allocated in the month, over all events.
    pub hours: u64,
}

/// The id of an employee's document for a month.
pub fn doc_id(employee_id: &str, month: &str) -> String {
    format!("{employee_id}|{month}")
}

/// The month (`YYYY-MM`) of a `YYYY-MM-DD` day, or [`INVALID_DATE`] if it is not a
/// date of the proleptic Gregorian calendar written so. Never panics, whatever the text.
pub fn month_of(day: &str) -> &str {
    let b = day.as_bytes();
    let digits = |from: usize, to: usize| b[from..to].iter().all(u8::is_ascii_digit);
    let shaped = b.len() == 10 && b[4] == b'-' && b[7] == b'-';
    if !(shaped && digits(0, 4) && digits(5, 7) && digits(8, 10)) {
        return INVALID_DATE;
    }
    let number = |from: usize, to: usize| {
        b[from..to]
            .iter()
            .fold(0, |n, d| n * 10 + u32::from(d - b'0'))
    };
    let (year, month, date) = (number(0, 4), number(5, 7), number(8, 10));
    if !(1..=12).contains(&month) || date == 0 || date > days_in_month(year, month) {
        return INVALID_DATE;
    }
    // Every byte was checked to be ASCII, so byte 7 is a character boundary.
    &day[..7]
}

/// The days of `month` (1 to 12) in `year`.
pub(crate) fn days_in_month(year: u32, month: u32) -> u32 {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// An event's allocations grouped by month, in order of each month's first day listed.
fn by_month(allocations: &[Allocation]) -> Vec<(&str, Vec<Allocation>)> {
    let mut months: Vec<(&str, Vec<Allocation>)> = Vec::new();
    for allocation in allocations {
        let month = month_of(&allocation.day);
        match months.iter_mut().find(|(m, _)| *m == month) {
            Some((_, list)) => list.push(allocation.clone()),
            None => months.push((month, vec![allocation.clone()])),
        }
    }
    months
}

/// The projection.
pub struct MonthlyAllocation;

impl Projection for MonthlyAllocation {
    type Event = AllocationEvent;
    type Doc = EmployeeMonth;
    const NAME: &'static str = "monthly-allocation";
    const VERSION: u32 = 1;
    const DOCUMENTS: Documents = Documents::Custom;

    fn doc_ids(event: &Envelope<AllocationEvent>) -> Vec<String> {
        match &event.event {
            // Only its children count: routed nowhere, the parent is never folded.
            AllocationEvent::EmployeeAllocated { .. } => Vec::new(),
            AllocationEvent::EmployeeAllocatedInMonth {
                employee_id, month, ..
            } => vec![doc_id(&employee_id.0, month)],
        }
    }

    fn fan_out(event: &Envelope<AllocationEvent>) -> Vec<AllocationEvent> {
        let AllocationEvent::EmployeeAllocated {
            employee_id,
            allocations,
        } = &event.event
        else {
            return Vec::new();
        };
        by_month(allocations)
            .into_iter()
            .map(
                |(month, allocations)| AllocationEvent::EmployeeAllocatedInMonth {
                    employee_id: employee_id.clone(),
                    month: month.to_owned(),
                    allocations,
                },
            )
            .collect()
    }

    fn create(_id: &str, event: &Envelope<AllocationEvent>) -> Option<EmployeeMonth> {
        let AllocationEvent::EmployeeAllocatedInMonth {
            employee_id, month, ..
        } = &event.event
        else {
            return None;
        };
        let mut doc = EmployeeMonth {
            employee_id: employee_id.0.clone(),
            month: month.clone(),
            hours: 0,
        };
        Self::apply(&mut doc, event);
        Some(doc)
    }

    fn apply(doc: &mut EmployeeMonth, event: &Envelope<AllocationEvent>) {
        if let AllocationEvent::EmployeeAllocatedInMonth { allocations, .. } = &event.event {
            doc.hours += allocations.iter().map(|a| u64::from(a.hours)).sum::<u64>();
        }
    }
}

refract_guest::export_projection!(MonthlyAllocation);
