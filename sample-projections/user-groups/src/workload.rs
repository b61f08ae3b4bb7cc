//! A deterministic stream of user and group events, for tests that append it to a real
//! daemon and compare its documents with the native fold.

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
    let mut rng = XorShift::new(seed);
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

/// Xorshift64: plenty for a workload, and no dependency.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // Spread small seeds over the state; the state must never be zero.
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
