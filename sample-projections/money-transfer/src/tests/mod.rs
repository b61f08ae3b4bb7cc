//! Native tests: the process manager runs in the SDK's in-memory `World`, and the
//! `account-balance` projection reads the balances it leaves.

mod random;
mod replay;

use std::collections::BTreeMap;

use account_balance::AccountBalanceProjection;
use refract_guest::Envelope;
use refract_guest::subscription::testing::World;
use serde_json::{Value, json};

use crate::{Account, AccountEvent, MoneyTransfer};

fn open(world: &mut World, account: &str, balance: i64, rejects_deposits: bool) {
    world.given(
        account,
        "AccountOpened",
        json!({"owner": "ann", "initial_balance": balance, "rejects_deposits": rejects_deposits}),
    );
}

fn start(world: &mut World, id: &str, from: &str, to: &str, amount: i64) {
    world.given(
        &format!("transfer-{id}"),
        "TransferStarted",
        json!({"transfer_id": id, "from": from, "to": to, "amount": amount}),
    );
}

/// The event types of a stream, in order.
fn types(world: &World, stream: &str) -> Vec<String> {
    world
        .stream(stream)
        .iter()
        .map(|e| e.event_type.clone())
        .collect()
}

/// The data of a stream's event at `version`.
fn data(world: &World, stream: &str, version: usize) -> Value {
    serde_json::from_str(&world.stream(stream)[version - 1].data).unwrap()
}

/// Every account's balance, as the `account-balance` projection has it.
fn balances(world: &World) -> BTreeMap<String, i64> {
    let docs = refract_guest::testing::project::<AccountBalanceProjection>(world.events())
        .expect("account-balance projects");
    docs.into_iter()
        .map(|(id, doc)| (id, doc["balance"].as_i64().unwrap()))
        .collect()
}

/// An account as this crate's own fold has it.
fn account(world: &World, stream: &str) -> Account {
    let events: Vec<Envelope<AccountEvent>> = world
        .stream(stream)
        .into_iter()
        .filter(|e| e.event_type != "TransferStarted")
        .map(|e| {
            let data: Value = serde_json::from_str(&e.data).unwrap();
            let event = serde_json::from_value(json!({ e.event_type.as_str(): data })).unwrap();
            Envelope::new(event, e.clone())
        })
        .collect();
    Account::fold(&events)
}

fn two_accounts(b_rejects: bool) -> World {
    let mut world = World::new();
    open(&mut world, "account-a", 100, false);
    open(&mut world, "account-b", 0, b_rejects);
    world
}

#[test]
fn describes_itself() {
    let d = refract_guest::subscription::describe::<MoneyTransfer>();
    assert_eq!((d.name.as_str(), d.version), ("money-transfer", 1));
    let expected = [
        "TransferStarted",
        "MoneyWithdrawn",
        "MoneyDeposited",
        "TransferFailedToDeposit",
        "MoneyRefunded",
    ];
    assert_eq!(d.event_types, expected);
}

#[test]
fn a_transfer_completes() {
    let mut world = two_accounts(false);
    start(&mut world, "t-1", "account-a", "account-b", 30);
    world.run::<MoneyTransfer>().unwrap();

    assert_eq!(
        types(&world, "transfer-t-1"),
        ["TransferStarted", "TransferCompleted"]
    );
    assert_eq!(
        types(&world, "account-a"),
        ["AccountOpened", "MoneyWithdrawn"]
    );
    assert_eq!(
        types(&world, "account-b"),
        ["AccountOpened", "MoneyDeposited"]
    );
    let withdrawn = json!({"transfer_id": "t-1", "amount": 30, "to": "account-b"});
    assert_eq!(data(&world, "account-a", 2), withdrawn);
    let deposited = json!({"transfer_id": "t-1", "amount": 30, "from": "account-a"});
    assert_eq!(data(&world, "account-b", 2), deposited);
    assert_eq!(
        data(&world, "transfer-t-1", 2),
        json!({"transfer_id": "t-1"})
    );
    let expected = BTreeMap::from([("account-a".into(), 70), ("account-b".into(), 30)]);
    assert_eq!(balances(&world), expected);
    assert_eq!(account(&world, "account-a").balance, 70);
}

#[test]
fn insufficient_funds_fail_the_transfer_and_move_nothing() {
    let mut world = two_accounts(false);
    start(&mut world, "t-1", "account-a", "account-b", 101);
    world.run::<MoneyTransfer>().unwrap();

    assert_eq!(
        types(&world, "transfer-t-1"),
        ["TransferStarted", "TransferFailed"]
    );
    let failed = data(&world, "transfer-t-1", 2);
    assert_eq!(failed["transfer_id"], "t-1");
    let reason = failed["reason"].as_str().unwrap();
    assert_eq!(
        reason,
        "insufficient funds: account-a has 100, the transfer needs 101"
    );
    assert_eq!(types(&world, "account-a"), ["AccountOpened"]);
    assert_eq!(balances(&world)["account-a"], 100);
}

#[test]
fn a_refused_deposit_ends_refunded() {
    let mut world = two_accounts(true);
    start(&mut world, "t-1", "account-a", "account-b", 40);
    world.run::<MoneyTransfer>().unwrap();

    let expected = [
        "TransferStarted",
        "TransferFailedToDeposit",
        "TransferRefunded",
    ];
    assert_eq!(types(&world, "transfer-t-1"), expected);
    let failed = json!({
        "transfer_id": "t-1",
        "from": "account-a",
        "amount": 40,
        "reason": "account account-b rejects deposits",
    });
    assert_eq!(data(&world, "transfer-t-1", 2), failed);
    let expected = ["AccountOpened", "MoneyWithdrawn", "MoneyRefunded"];
    assert_eq!(types(&world, "account-a"), expected);
    assert_eq!(
        data(&world, "account-a", 3),
        json!({"transfer_id": "t-1", "amount": 40})
    );
    assert_eq!(types(&world, "account-b"), ["AccountOpened"]);
    let expected = BTreeMap::from([("account-a".into(), 100), ("account-b".into(), 0)]);
    assert_eq!(balances(&world), expected);
}

#[test]
fn a_transfer_to_a_missing_account_ends_refunded() {
    let mut world = two_accounts(false);
    start(&mut world, "t-1", "account-a", "account-zz", 10);
    world.run::<MoneyTransfer>().unwrap();

    let last = world.stream("transfer-t-1").len();
    assert_eq!(types(&world, "transfer-t-1")[last - 1], "TransferRefunded");
    let reason = data(&world, "transfer-t-1", 2)["reason"].clone();
    assert_eq!(reason, "account account-zz does not exist");
    assert!(world.stream("account-zz").is_empty());
    assert_eq!(balances(&world)["account-a"], 100);
}

#[test]
fn invalid_transfers_fail_before_moving_money() {
    let cases = [
        (
            "t-1",
            "account-a",
            "account-b",
            0,
            "the amount must be positive, not 0",
        ),
        (
            "t-2",
            "account-a",
            "account-b",
            -5,
            "the amount must be positive, not -5",
        ),
        (
            "t-3",
            "account-a",
            "account-a",
            5,
            "cannot transfer from account-a to itself",
        ),
        (
            "t-4",
            "account-a",
            "wallet-b",
            5,
            "\"wallet-b\" is not an account stream (account-*)",
        ),
        (
            "t-5",
            "account-x",
            "account-b",
            5,
            "account account-x does not exist",
        ),
    ];
    let mut world = two_accounts(false);
    for (id, from, to, amount, _) in cases {
        start(&mut world, id, from, to, amount);
    }
    world.run::<MoneyTransfer>().unwrap();
    for (id, .., reason) in cases {
        let stream = format!("transfer-{id}");
        assert_eq!(
            types(&world, &stream),
            ["TransferStarted", "TransferFailed"],
            "{id}"
        );
        assert_eq!(data(&world, &stream, 2)["reason"], reason, "{id}");
    }
    assert_eq!(types(&world, "account-a"), ["AccountOpened"]);
    assert_eq!(types(&world, "account-b"), ["AccountOpened"]);
}

#[test]
fn balances_sum_is_unchanged_across_outcomes() {
    let mut world = World::new();
    open(&mut world, "account-a", 100, false);
    open(&mut world, "account-b", 50, false);
    open(&mut world, "account-c", 10, true);
    let transfers = [
        ("t-1", "account-a", "account-b", 60),  // completes
        ("t-2", "account-a", "account-b", 60),  // fails: 40 left
        ("t-3", "account-b", "account-c", 110), // refunded: c rejects deposits
        ("t-4", "account-b", "account-a", 110), // completes
    ];
    for (id, from, to, amount) in transfers {
        start(&mut world, id, from, to, amount);
        world.run::<MoneyTransfer>().unwrap();
    }

    let b = balances(&world);
    assert_eq!(b.values().sum::<i64>(), 160);
    let expected = [("account-a", 150), ("account-b", 0), ("account-c", 10)];
    let expected: BTreeMap<String, i64> = expected.map(|(a, n)| (a.into(), n)).into();
    assert_eq!(b, expected);
    let last = |id: &str| types(&world, &format!("transfer-{id}")).pop().unwrap();
    let outcomes = ["t-1", "t-2", "t-3", "t-4"].map(last);
    let expected = [
        "TransferCompleted",
        "TransferFailed",
        "TransferRefunded",
        "TransferCompleted",
    ];
    assert_eq!(outcomes, expected);
}
