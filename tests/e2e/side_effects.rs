//! Side effects and where subscriptions start: a v2 deployed from the beginning
//! sends nothing for what v1 already handled; a hot subscription handles only what
//! is appended after it was deployed; a failing `handle` commits nothing of its page.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::Daemon;
use crate::common::receiver::Receiver;
use crate::subscriptions::append_incidents;

/// Waits until `name`@`version` has handled everything up to the current head.
async fn caught_up(daemon: &Daemon, name: &str, version: u32) -> Value {
    let started = Instant::now();
    loop {
        let p = daemon.projection(name, version).await;
        assert!(p["status"] != "paused", "{name} v{version} paused: {p}");
        if p["position"] == p["head"] {
            return p;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{p}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the receiver has accepted `n` messages, then a little longer so an
/// extra one would show.
async fn wait_accepted(receiver: &Receiver, n: usize) -> Vec<(String, Value)> {
    let started = Instant::now();
    while receiver.accepted().len() < n {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{} of {n} messages: {:?}",
            receiver.accepted().len(),
            receiver.accepted()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    receiver.accepted()
}

fn config(addr: std::net::SocketAddr, names: &[&str]) -> String {
    let mut c = format!("[teams.default]\noutbound_hosts = [\"{addr}\"]\n");
    for n in names {
        c.push_str(&format!(
            "[components.{n}.settings]\nwebhook_url = \"http://{addr}/hooks/incidents\"\n"
        ));
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_from_the_beginning_sends_nothing_v1_already_sent() {
    let (receiver, addr) = Receiver::start(0).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(
        &dir.path().join("data"),
        Some(&config(addr, &["incident-notifier"])),
    );
    daemon
        .deploy(refract_test_artifacts::INCIDENT_NOTIFIER)
        .await;
    let before = append_incidents(&daemon, 8, 40, "a-").await;
    caught_up(&daemon, "incident-notifier", 1).await;
    assert_eq!(
        wait_accepted(&receiver, before.len()).await.len(),
        before.len()
    );

    daemon
        .deploy(refract_test_artifacts::INCIDENT_NOTIFIER_V2)
        .await;
    let p2 = caught_up(&daemon, "incident-notifier", 2).await;
    assert_eq!(
        p2["effects_held"],
        before.len(),
        "v2 held its sends for v1's history: {p2}"
    );
    assert_eq!(p2["outbox"]["pending"], 0, "{p2}");

    let after = append_incidents(&daemon, 9, 20, "b-").await;
    assert!(!after.is_empty());
    let accepted = wait_accepted(&receiver, 2 * after.len() + before.len()).await;
    let from_v2: Vec<&str> = accepted
        .iter()
        .filter(|(_, body)| body["notifier"] == 2)
        .map(|(_, body)| body["incident_id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        from_v2.len(),
        after.len(),
        "v2 announces only what came after: {accepted:?}"
    );
    assert_eq!(
        accepted.len(),
        before.len() + 2 * after.len(),
        "{accepted:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_subscription_handles_only_what_is_appended_after_its_deploy() {
    let (receiver, addr) = Receiver::start(0).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(
        &dir.path().join("data"),
        Some(&config(addr, &["hot-notifier"])),
    );
    append_incidents(&daemon, 10, 30, "a-").await;
    let (_, head) = daemon.get("/projections").await;
    let deployed = daemon.deploy(refract_test_artifacts::HOT_NOTIFIER).await;
    assert_eq!(deployed["name"], "hot-notifier", "{deployed}");
    let p = caught_up(&daemon, "hot-notifier", 1).await;
    assert_eq!(p["events_applied"], 0, "history is not handled: {p} {head}");
    assert!(receiver.accepted().is_empty());

    append_incidents(&daemon, 11, 5, "b-").await;
    let accepted = wait_accepted(&receiver, 5).await;
    assert_eq!(
        accepted.len(),
        5,
        "one per incident logged after the deploy: {accepted:?}"
    );
    let p = caught_up(&daemon, "hot-notifier", 1).await;
    assert_eq!(p["events_applied"], 5, "{p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_handle_commits_nothing_of_its_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = "page_size = 50\n[components.money-transfer]\nattempts = 2\n";
    let daemon = Daemon::start(&dir.path().join("data"), Some(config));
    for a in ["account-a", "account-b"] {
        let opened = json!({"owner": a, "initial_balance": 100, "rejects_deposits": false});
        let (code, body) = daemon
            .append(a, Some(0), &[("AccountOpened".into(), opened)])
            .await;
        assert_eq!(code, 200, "{body}");
    }
    // One page: a good transfer, then one whose amount cannot be decoded.
    let good = json!({"transfer_id": "t1", "from": "account-a", "to": "account-b", "amount": 10});
    let bad = json!({"transfer_id": "t2", "from": "account-a", "to": "account-b", "amount": "ten"});
    let events = [("TransferStarted".to_owned(), good)];
    daemon.append("transfer-t1", Some(0), &events).await;
    let events = [("TransferStarted".to_owned(), bad)];
    daemon.append("transfer-t2", Some(0), &events).await;
    // Deployed after: its first page holds both transfers.
    daemon.deploy(refract_test_artifacts::MONEY_TRANSFER).await;

    let started = Instant::now();
    let p = loop {
        let p = daemon.projection("money-transfer", 1).await;
        if p["status"] == "paused" {
            break p;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not paused: {p}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        p["error"]["event_sequence"], 4,
        "the error names the event: {p}"
    );
    assert!(
        p["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("\"ten\""),
        "{p}"
    );
    assert_eq!(p["position"], 0, "nothing of the page: {p}");
    assert_eq!(p["events_applied"], 0, "{p}");
    let (_, a) = daemon.get("/streams/account-a").await;
    assert_eq!(
        a["version"], 1,
        "t1's withdrawal was not committed either: {a}"
    );
    assert_eq!(p["head"], 4, "no emitted event landed: {p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewind_replays_without_firing_anything_twice() {
    let (receiver, addr) = Receiver::start(0).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(
        &dir.path().join("data"),
        Some(&config(addr, &["incident-notifier"])),
    );
    for wasm in [
        refract_test_artifacts::INCIDENT_NOTIFIER,
        refract_test_artifacts::MONEY_TRANSFER,
        refract_test_artifacts::ACCOUNT_BALANCE,
    ] {
        daemon.deploy(wasm).await;
    }
    for a in ["account-a", "account-b"] {
        let opened = json!({"owner": a, "initial_balance": 100, "rejects_deposits": false});
        daemon
            .append(a, Some(0), &[("AccountOpened".into(), opened)])
            .await;
    }
    for t in 0..3 {
        let started = json!({"transfer_id": format!("t{t}"), "from": "account-a", "to": "account-b", "amount": 10});
        daemon
            .append(
                &format!("transfer-t{t}"),
                Some(0),
                &[("TransferStarted".into(), started)],
            )
            .await;
    }
    let resolved = append_incidents(&daemon, 12, 15, "").await;
    let sent = wait_accepted(&receiver, resolved.len()).await.len();
    let first = caught_up(&daemon, "money-transfer", 1).await;
    caught_up(&daemon, "incident-notifier", 1).await;

    let (code, body) = daemon
        .post_json(
            "/projections/money-transfer/versions/1/rewind?to=0",
            &json!({}),
        )
        .await;
    assert_eq!((code, &body["position"]), (200, &json!(0)), "{body}");
    let (code, body) = daemon
        .post_json(
            "/projections/incident-notifier/versions/1/rewind?at=2000-01-01T00:00:00Z",
            &json!({}),
        )
        .await;
    assert_eq!((code, &body["position"]), (200, &json!(0)), "{body}");
    let again = caught_up(&daemon, "money-transfer", 1).await;
    caught_up(&daemon, "incident-notifier", 1).await;
    assert_eq!(
        again["events_applied"].as_u64(),
        first["events_applied"].as_u64().map(|n| 2 * n),
        "every event handled again: {again}"
    );
    assert_eq!(
        again["head"], first["head"],
        "no event emitted twice: {again}"
    );
    assert_eq!(
        wait_accepted(&receiver, sent).await.len(),
        sent,
        "no message sent twice"
    );
    let (_, a) = daemon.get("/streams/account-a").await;
    assert_eq!(
        a["version"], 4,
        "opened + three withdrawals, once each: {a}"
    );

    let (code, body) = daemon
        .post_json("/projections/account-balance/versions/1/rewind", &json!({}))
        .await;
    assert_eq!(code, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("only subscriptions"),
        "{body}"
    );
    let (code, body) = daemon
        .post_json(
            "/projections/money-transfer/versions/1/rewind?at=yesterday",
            &json!({}),
        )
        .await;
    assert_eq!(code, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dead_letter_policy_records_the_failing_event_and_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = "[components.money-transfer]\nattempts = 2\non_error = \"dead-letter\"\n";
    let daemon = Daemon::start(&dir.path().join("data"), Some(config));
    for a in ["account-a", "account-b"] {
        let opened = json!({"owner": a, "initial_balance": 100, "rejects_deposits": false});
        daemon
            .append(a, Some(0), &[("AccountOpened".into(), opened)])
            .await;
    }
    for (t, amount) in [("t1", json!(10)), ("t2", json!("ten")), ("t3", json!(5))] {
        let started =
            json!({"transfer_id": t, "from": "account-a", "to": "account-b", "amount": amount});
        daemon
            .append(
                &format!("transfer-{t}"),
                Some(0),
                &[("TransferStarted".into(), started)],
            )
            .await;
    }
    // Deployed after: its first page holds all three transfers, the bad one between.
    daemon.deploy(refract_test_artifacts::MONEY_TRANSFER).await;
    let p = caught_up(&daemon, "money-transfer", 1).await;
    let letters = p["dead_letters"].as_array().expect("dead letters");
    assert_eq!(letters.len(), 1, "{p}");
    assert_eq!(letters[0]["sequence"], 4, "the bad transfer: {p}");
    assert!(
        letters[0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("\"ten\""),
        "{p}"
    );
    for t in ["t1", "t3"] {
        let (_, s) = daemon.get(&format!("/streams/transfer-{t}")).await;
        let last = s["events"]
            .as_array()
            .and_then(|e| e.last())
            .cloned()
            .unwrap_or_default();
        assert_eq!(last["type"], "TransferCompleted", "{t} went through: {s}");
    }
    let (_, t2) = daemon.get("/streams/transfer-t2").await;
    assert_eq!(t2["version"], 1, "nothing done for the dead letter: {t2}");
    assert_eq!(p["status"], "running", "{p}");
}
