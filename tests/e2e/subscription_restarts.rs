//! Issue 10: a subscription's page is its own size (money-transfer says 100), so a
//! replay that reads long account streams for every event still commits page by page
//! when the daemon is killed and started again every 2 s, and a replay of what it
//! already handled emits nothing twice.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::Daemon;

const ACCOUNTS: usize = 4;
const TRANSFERS: usize = 800;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn money_transfer_after_a_rewind_commits_page_by_page_across_restarts_every_2s() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // The daemon's page size is the default 5,000: the component's 100 must decide.
    let mut daemon = Daemon::start(&data, None);
    daemon.deploy(refract_test_artifacts::MONEY_TRANSFER).await;
    let account = |n: usize| format!("account-{n}");
    for n in 0..ACCOUNTS {
        let opened = json!({"owner": format!("owner-{n}"), "initial_balance": 1_000_000, "rejects_deposits": false});
        let (code, body) = daemon
            .append(&account(n), Some(0), &[("AccountOpened".into(), opened)])
            .await;
        assert_eq!(code, 200, "{body}");
    }
    // Few accounts, many transfers: long account streams, each folded per event.
    for t in 0..TRANSFERS {
        let (from, to) = (t % ACCOUNTS, (t + 1) % ACCOUNTS);
        let started = json!({"transfer_id": format!("t{t}"), "from": account(from),
            "to": account(to), "amount": 1 + t % 9});
        let (code, body) = daemon
            .append(
                &format!("transfer-t{t}"),
                Some(0),
                &[("TransferStarted".into(), started)],
            )
            .await;
        assert_eq!(code, 200, "{body}");
    }
    let settled = Instant::now();
    let mut still = 0;
    let head = loop {
        let p = daemon.projection("money-transfer", 1).await;
        assert!(p["status"] != "paused", "{p}");
        still = if p["position"] == p["head"] {
            still + 1
        } else {
            0
        };
        if still >= 10 {
            break p["head"].as_i64().expect("head");
        }
        assert!(settled.elapsed() < Duration::from_secs(300), "{p}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("first pass: {:?}, head {head}", settled.elapsed());

    let (code, body) = daemon
        .post_json(
            "/projections/money-transfer/versions/1/rewind?to=0",
            &json!({}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let replay = Instant::now();
    let mut last = 0;
    let mut restarts = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let p = daemon.projection("money-transfer", 1).await;
        assert!(p["status"] != "paused", "{p}");
        let position = p["position"].as_i64().expect("position");
        if position >= head {
            break;
        }
        assert!(
            position > last,
            "no progress in the 2 s since restart {restarts}: {position} <= {last}: {p}\n{}",
            daemon.log()
        );
        last = position;
        daemon.kill();
        daemon = Daemon::start(&data, None);
        restarts += 1;
        assert!(replay.elapsed() < Duration::from_secs(600), "{p}");
    }
    eprintln!("replay: {:?}, {restarts} restarts", replay.elapsed());
    let p = daemon.projection("money-transfer", 1).await;
    // Every step carries an idempotency key: a replay appends nothing.
    assert_eq!(p["head"], head, "the replay emitted nothing: {p}");
    assert!(restarts > 0, "the replay outlived a restart");
}
