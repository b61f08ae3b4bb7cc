//! A deterministic stream of allocation events, for tests that append it to a real
//! daemon and compare its documents with the native fold.

use serde_json::{Value, json};

use crate::days_in_month;
use refract_guest::testing::Rng;

/// One event to append: (stream id, event type, data, tenant).
pub type WorkloadEvent = (String, String, Value, Option<String>);

/// Days that are not `YYYY-MM-DD` dates, as a careless client might send them.
const BAD_DAYS: [&str; 8] = [
    "2024-02-30",
    "2023-02-29",
    "2024-13-01",
    "2024-1-5",
    "24-01-05",
    "2024/03/04",
    "",
    "2024-0é-1",
];

/// `n` events from `seed`, the same for the same arguments.
///
/// Employees (`emp-{k}`, each on its stream `employee-{k}`) are allocated 1 to 8 hours
/// on runs of one to seven consecutive days starting anywhere in 2024, so runs cross
/// month ends and, from late December, the year's. About one event in twenty-five
/// also lists a day that is no date. No event has a tenant.
pub fn workload(seed: u64, n: usize) -> Vec<WorkloadEvent> {
    let mut rng = Rng::new(seed);
    let employees = (n / 20).max(3);
    (0..n)
        .map(|_| {
            let k = rng.below(employees);
            let start = rng.below(366) as u32;
            let mut allocations: Vec<Value> = (0..1 + rng.below(7) as u32)
                .map(|i| json!({"day": date(start + i), "hours": 1 + rng.below(8)}))
                .collect();
            if rng.below(25) == 0 {
                let day = BAD_DAYS[rng.below(BAD_DAYS.len())];
                let at = rng.below(allocations.len() + 1);
                allocations.insert(at, json!({"day": day, "hours": 1 + rng.below(8)}));
            }
            (
                format!("employee-{k}"),
                "EmployeeAllocated".to_owned(),
                json!({"employee_id": format!("emp-{k}"), "allocations": allocations}),
                None,
            )
        })
        .collect()
}

/// The date `days` after 2024-01-01, as `YYYY-MM-DD`.
fn date(mut days: u32) -> String {
    let (mut year, mut month) = (2024, 1);
    while days >= days_in_month(year, month) {
        days -= days_in_month(year, month);
        (year, month) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
    }
    format!("{year:04}-{month:02}-{:02}", days + 1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_count_from_the_first_of_january_2024() {
        let d = super::date;
        assert_eq!(
            [d(0), d(30), d(31), d(59), d(60), d(365), d(366)],
            [
                "2024-01-01",
                "2024-01-31",
                "2024-02-01",
                "2024-02-29",
                "2024-03-01",
                "2024-12-31",
                "2025-01-01"
            ]
        );
    }
}
