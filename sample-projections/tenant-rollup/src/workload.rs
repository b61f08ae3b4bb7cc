//! A deterministic stream of account and issue events over a few tenants, for tests
//! that append it to a real daemon and compare its documents with the native fold.

use refract_guest::testing::Rng;
use serde_json::{Value, json};

/// One event to append: (stream id, event type, data, tenant).
pub type WorkloadEvent = (String, String, Value, Option<String>);

/// The tenants [`workload`] appends for; `None` appends without one.
pub const TENANTS: [Option<&str>; 4] = [Some("acme"), Some("globex"), Some("Initech.eu"), None];

/// `n` events from `seed`, the same for the same arguments.
///
/// Accounts (`account-{k}`) open for one of [`TENANTS`]; issues (`issue-{i}`) open
/// against an account, for its tenant, and some are closed later, so a stream's events
/// always share a tenant and no tenant closes more issues than it opened.
pub fn workload(seed: u64, n: usize) -> Vec<WorkloadEvent> {
    let mut rng = Rng::new(seed);
    let mut accounts: Vec<Option<String>> = Vec::new();
    let mut open: Vec<(String, Option<String>)> = Vec::new();
    let mut issues = 0;
    let mut events = Vec::with_capacity(n);
    while events.len() < n {
        let roll = rng.below(20);
        if accounts.is_empty() || roll < 5 {
            let tenant = TENANTS[rng.below(TENANTS.len())].map(str::to_owned);
            let k = accounts.len();
            events.push((
                format!("account-{k}"),
                "AccountOpened".to_owned(),
                json!({"owner": format!("owner-{}", rng.below(50))}),
                tenant.clone(),
            ));
            accounts.push(tenant);
        } else if open.is_empty() || roll < 14 {
            let k = rng.below(accounts.len());
            let stream = format!("issue-{issues}");
            issues += 1;
            events.push((
                stream.clone(),
                "IssueOpened".to_owned(),
                json!({"account": format!("account-{k}"), "title": format!("Problem {issues}")}),
                accounts[k].clone(),
            ));
            open.push((stream, accounts[k].clone()));
        } else {
            let (stream, tenant) = open.swap_remove(rng.below(open.len()));
            events.push((
                stream,
                "IssueClosed".to_owned(),
                json!({"resolution": "fixed"}),
                tenant,
            ));
        }
    }
    events
}
