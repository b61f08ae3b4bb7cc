//! A deterministic stream of user and group events, for tests that append it to a real
//! daemon and compare its documents with the native fold.

use refract_guest::testing::Rng;
use serde_json::{Value, json};

/// One event to append: (stream id, event type, data, tenant).
pub type WorkloadEvent = (String, String, Value, Option<String>);

/// `n` events from `seed`, the same for the same arguments.
///
/// Users register on their own streams (`user-{k}`) at most once; groups
/// (`group-{g}`) assign one or several users, often before they register, and
/// sometimes the same user twice in one event or the same group twice to one user.
/// No event has a tenant.
pub fn workload(seed: u64, n: usize) -> Vec<WorkloadEvent> {
    let mut rng = Rng::new(seed);
    let users = (n / 3).max(2);
    let groups = (n / 10).clamp(2, 25);
    let mut registered = vec![false; users];
    let mut events = Vec::with_capacity(n);
    let user = |k: usize| format!("user-{k}");
    while events.len() < n {
        let group = rng.below(groups);
        match rng.below(10) {
            0..=3 => {
                let k = rng.below(users);
                if registered[k] {
                    continue;
                }
                registered[k] = true;
                events.push((
                    user(k),
                    "UserRegistered".to_owned(),
                    json!({"user_id": user(k), "email": format!("user{k}@example.com")}),
                    None,
                ));
            }
            4..=6 => events.push((
                format!("group-{group}"),
                "SingleUserAssignedToGroup".to_owned(),
                json!({"group_id": format!("group-{group}"), "user_id": user(rng.below(users))}),
                None,
            )),
            _ => {
                let members: Vec<String> = (0..1 + rng.below(4))
                    .map(|_| user(rng.below(users)))
                    .collect();
                events.push((
                    format!("group-{group}"),
                    "MultipleUsersAssignedToGroup".to_owned(),
                    json!({"group_id": format!("group-{group}"), "user_ids": members}),
                    None,
                ));
            }
        }
    }
    events
}
