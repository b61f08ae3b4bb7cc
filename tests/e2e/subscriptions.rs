//! Subscriptions (seed 002): the money-transfer process manager raises events in the
//! daemon's transaction, survives SIGKILLs without debiting anyone twice, and the
//! incident notifier delivers through the outbox to a real local receiver.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::Daemon;
use crate::common::helpdesk::Rng;
use crate::common::receiver::Receiver;

const ACCOUNTS: usize = 50;
const TRANSFERS: usize = 1000;
const OPENING_BALANCE: i64 = 1_000_000;

/// Appends one event; panics unless accepted.
async fn append(daemon: &Daemon, stream: &str, expected: Option<u64>, ty: &str, data: Value) {
    let (code, body) = daemon
        .append(stream, expected, &[(ty.to_owned(), data)])
        .await;
    assert_eq!(code, 200, "append {ty} to {stream}: {body}");
}

/// Waits until the subscription has handled everything and nothing new comes:
/// its own emits move the head, so the head must stay still while it is at it.
async fn wait_settled(daemon: &Daemon, name: &str, timeout: Duration) -> Value {
    let started = Instant::now();
    let mut still = 0;
    loop {
        let p = daemon.projection(name, 1).await;
        assert!(
            p["status"] != "paused",
            "{name} paused: {p}\n{}",
            daemon.log()
        );
        if p["position"] == p["head"] {
            still += 1;
            if still >= 10 {
                return p;
            }
        } else {
            still = 0;
        }
        assert!(
            started.elapsed() < timeout,
            "{name} not settled after {timeout:?}: {p}\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A stream's events as (type, data).
async fn events_of(daemon: &Daemon, stream: &str) -> Vec<(String, Value)> {
    let (code, body) = daemon.get(&format!("/streams/{stream}")).await;
    assert_eq!(code, 200, "{stream}: {body}");
    body["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["type"].as_str().expect("type").to_owned(),
                e["data"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfers_complete_or_refund_exactly_once_across_two_sigkills() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // Small pages: many commits, so the kills land between two of them.
    let config = "page_size = 25\n";
    let mut daemon = Daemon::start(&data, Some(config));
    daemon.deploy(refract_test_artifacts::MONEY_TRANSFER).await;
    daemon.deploy(refract_test_artifacts::ACCOUNT_BALANCE).await;

    let account = |n: usize| format!("account-{n:02}");
    for n in 0..ACCOUNTS {
        let opened = json!({
            "owner": format!("owner-{n}"),
            "initial_balance": OPENING_BALANCE,
            "rejects_deposits": n % 7 == 3,
        });
        append(&daemon, &account(n), Some(0), "AccountOpened", opened).await;
    }
    let mut rng = Rng::new(17);
    let mut amounts = HashMap::new();
    for t in 0..TRANSFERS {
        if t == TRANSFERS / 3 || t == 2 * TRANSFERS / 3 {
            // Killed mid-run, restarted on the same data directory.
            daemon.kill();
            daemon = Daemon::start(&data, Some(config));
        }
        let from = rng.below(ACCOUNTS as u64) as usize;
        let to = (from + 1 + rng.below(ACCOUNTS as u64 - 1) as usize) % ACCOUNTS;
        let id = format!("t{t:04}");
        let amount = 1 + rng.below(500) as i64;
        amounts.insert(id.clone(), amount);
        let started =
            json!({"transfer_id": id, "from": account(from), "to": account(to), "amount": amount});
        append(
            &daemon,
            &format!("transfer-{id}"),
            Some(0),
            "TransferStarted",
            started,
        )
        .await;
    }
    wait_settled(&daemon, "money-transfer", Duration::from_secs(180)).await;

    let mut ends: BTreeMap<&str, usize> = BTreeMap::new();
    for id in amounts.keys() {
        let events = events_of(&daemon, &format!("transfer-{id}")).await;
        let last = events.last().map(|(t, _)| t.as_str()).unwrap_or("");
        let end = match last {
            "TransferCompleted" => "completed",
            "TransferRefunded" => "refunded",
            other => panic!("transfer {id} ended with {other:?}: {events:?}"),
        };
        *ends.entry(end).or_default() += 1;
    }
    assert!(ends["completed"] > 0 && ends["refunded"] > 0, "{ends:?}");

    let mut total = 0;
    for n in 0..ACCOUNTS {
        let events = events_of(&daemon, &account(n)).await;
        let mut seen: HashMap<(String, String), usize> = HashMap::new();
        let mut balance = 0;
        for (ty, data) in &events {
            let amount = data["amount"].as_i64().unwrap_or(0);
            match ty.as_str() {
                "AccountOpened" => balance += data["initial_balance"].as_i64().expect("balance"),
                "MoneyWithdrawn" => balance -= amount,
                "MoneyDeposited" | "MoneyRefunded" => balance += amount,
                other => panic!("unexpected {other} on {}", account(n)),
            }
            if let Some(t) = data["transfer_id"].as_str() {
                assert_eq!(amounts[t], amount, "{ty} of {t} moves its amount");
                *seen.entry((ty.clone(), t.to_owned())).or_default() += 1;
            }
        }
        if let Some(((ty, t), count)) = seen.iter().find(|(_, c)| **c > 1) {
            panic!("{} has {count} {ty} for transfer {t}", account(n));
        }
        // The read model agrees with the stream.
        let doc = daemon
            .wait_doc("account-balance", &account(n), |d| d["balance"] == balance)
            .await;
        assert_eq!(doc["balance"], balance, "{}", account(n));
        total += balance;
    }
    assert_eq!(
        total,
        OPENING_BALANCE * ACCOUNTS as i64,
        "money is neither made nor lost"
    );
}

/// Appends the help-desk workload, stream ids prefixed with `tag`; returns the ids
/// of the incidents it resolves.
pub async fn append_incidents(
    daemon: &Daemon,
    seed: u64,
    incidents: usize,
    tag: &str,
) -> Vec<String> {
    let mut resolved = Vec::new();
    for (id, events) in crate::common::helpdesk::workload(seed, incidents) {
        let id = format!("{tag}{id}");
        if events.iter().any(|(t, _)| t == "IncidentResolved") {
            resolved.push(id.clone());
        }
        let (code, body) = daemon.append(&id, Some(0), &events).await;
        assert_eq!(code, 200, "{body}");
    }
    resolved
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notifier_delivers_one_message_per_resolved_incident_despite_failures() {
    let (receiver, addr) = Receiver::start(2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "[teams.default]\noutbound_hosts = [\"{addr}\"]\n\
         [components.incident-notifier.settings]\nwebhook_url = \"http://{addr}/hooks/incidents\"\n"
    );
    let daemon = Daemon::start(&dir.path().join("data"), Some(&config));
    daemon
        .deploy(refract_test_artifacts::INCIDENT_NOTIFIER)
        .await;
    let resolved = append_incidents(&daemon, 5, 60, "").await;
    assert!(resolved.len() > 10, "the workload resolves incidents");

    let started = Instant::now();
    while receiver.accepted.lock().expect("lock").len() < resolved.len() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{} of {} delivered\n{}",
            receiver.accepted.lock().expect("lock").len(),
            resolved.len(),
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing more arrives: exactly one accepted delivery per resolved incident.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let accepted = receiver.accepted.lock().expect("lock").clone();
    let mut ids: Vec<&str> = accepted.iter().map(|(id, _)| id.as_str()).collect();
    ids.sort_unstable();
    let mut want: Vec<String> = resolved
        .iter()
        .map(|i| format!("incident-notifier/{i}/resolved"))
        .collect();
    want.sort_unstable();
    assert_eq!(ids, want, "stable ids, one per resolved incident");
    for (id, body) in &accepted {
        assert!(
            id.contains(body["incident_id"].as_str().expect("incident_id")),
            "{id}: {body}"
        );
    }
    let attempts = receiver.attempts.lock().expect("lock").clone();
    assert!(
        attempts.values().all(|&n| n == 3),
        "two refusals then accepted: {attempts:?}"
    );
    let p = daemon.projection("incident-notifier", 1).await;
    assert_eq!(p["outbox"]["delivered"], resolved.len(), "{p}");
    assert_eq!(p["outbox"]["pending"], 0, "{p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_sent_to_a_host_that_is_not_granted() {
    let (receiver, addr) = Receiver::start(0).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // The webhook is configured, but the team may reach no host.
    let config = format!(
        "[components.incident-notifier.settings]\nwebhook_url = \"http://{addr}/hooks/incidents\"\n"
    );
    let daemon = Daemon::start(&dir.path().join("data"), Some(&config));
    daemon
        .deploy(refract_test_artifacts::INCIDENT_NOTIFIER)
        .await;
    append_incidents(&daemon, 6, 20, "").await;
    let started = Instant::now();
    let p = loop {
        let p = daemon.projection("incident-notifier", 1).await;
        if p["status"] == "paused" {
            break p;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not paused: {p}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let message = p["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("not granted to team default"),
        "the error names the refusal: {p}"
    );
    assert_eq!(
        p["position"], 0,
        "nothing of the failing page is committed: {p}"
    );
    assert!(receiver.attempts.lock().expect("lock").is_empty());
}
