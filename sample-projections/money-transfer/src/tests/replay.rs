//! Replays, retries and the idempotency keys: money moves once.

use refract_guest::Envelope;
use refract_guest::subscription::testing::World;
use refract_guest::subscription::{Ctx, Effects, Expected, NewEvent, Subscription};
use refract_guest::{Event, GuestError};
use serde_json::json;

use super::{balances, open, start, two_accounts, types};
use crate::{MoneyTransfer, ProcessEvent};

/// The process manager under another name: it handles every event again from the
/// start of the same store, as a replay (or a lost position) would.
struct Replay;

impl Subscription for Replay {
    type Event = ProcessEvent;
    const NAME: &'static str = "money-transfer-replay";
    const VERSION: u32 = 1;

    fn handle(ctx: &mut Ctx<'_>, event: &Envelope<ProcessEvent>) -> Result<(), String> {
        MoneyTransfer::handle(ctx, event)
    }
}

/// Runs `MoneyTransfer`, then replays everything, and checks the replay added nothing.
pub(super) fn run_then_replay(world: &mut World) {
    world.run::<MoneyTransfer>().unwrap();
    let (events, before) = (world.events().len(), balances(world));
    world.run::<MoneyTransfer>().unwrap();
    world.run::<Replay>().unwrap();
    assert_eq!(world.events().len(), events, "the replay appended events");
    assert_eq!(balances(world), before);
}

#[test]
fn running_the_same_events_twice_debits_once() {
    let mut world = World::new();
    open(&mut world, "account-a", 100, false);
    open(&mut world, "account-b", 0, false);
    open(&mut world, "account-c", 0, true);
    start(&mut world, "t-1", "account-a", "account-b", 80); // completes
    start(&mut world, "t-2", "account-a", "account-c", 10); // refunded
    start(&mut world, "t-3", "account-a", "account-b", 50); // fails: 10 left
    // Replayed, t-1 and t-2 find less than they need: only their trace stops them.
    run_then_replay(&mut world);
    assert_eq!(balances(&world)["account-a"], 20);
    let withdrawals = world
        .stream("account-a")
        .iter()
        .filter(|e| e.event_type == "MoneyWithdrawn")
        .count();
    assert_eq!(withdrawals, 2);
}

#[test]
fn a_failed_transfer_stays_failed_on_replay_once_funded() {
    let mut world = two_accounts(false);
    start(&mut world, "t-1", "account-b", "account-a", 50); // b has 0: fails
    world.run::<MoneyTransfer>().unwrap();
    start(&mut world, "t-2", "account-a", "account-b", 60); // now b could pay t-1
    run_then_replay(&mut world);
    assert_eq!(
        types(&world, "transfer-t-1"),
        ["TransferStarted", "TransferFailed"]
    );
    assert_eq!(balances(&world)["account-b"], 60);
}

#[test]
fn a_refunded_transfer_stays_refunded_on_replay_once_the_account_exists() {
    let mut world = two_accounts(false);
    start(&mut world, "t-1", "account-a", "account-new", 10);
    world.run::<MoneyTransfer>().unwrap();
    open(&mut world, "account-new", 0, false);
    run_then_replay(&mut world);
    assert_eq!(types(&world, "account-new"), ["AccountOpened"]);
    assert_eq!(balances(&world)["account-a"], 100);
}

#[test]
fn a_stray_failed_to_deposit_creates_no_money() {
    let mut world = two_accounts(false);
    world.given(
        "transfer-t-9",
        "TransferFailedToDeposit",
        json!({"transfer_id": "t-9", "from": "account-a", "amount": 500, "reason": "?"}),
    );
    world.run::<MoneyTransfer>().unwrap();
    assert_eq!(types(&world, "account-a"), ["AccountOpened"]);
}

/// One emit as the process manager asked for it.
#[derive(Debug, PartialEq)]
struct Emit {
    stream: String,
    expected: Expected,
    event_type: String,
    key: Option<String>,
}

/// A `World` whose emits are recorded, and where a client may write to `race` just
/// after the process manager read it.
struct Recorder {
    world: World,
    emits: Vec<Emit>,
    race: Option<String>,
}

impl Effects for Recorder {
    fn emit(
        &mut self,
        stream: &str,
        expected: Expected,
        events: Vec<NewEvent>,
        idempotency_key: Option<&str>,
    ) -> Result<u64, String> {
        self.emits.push(Emit {
            stream: stream.to_owned(),
            expected,
            event_type: events[0].event_type.clone(),
            key: idempotency_key.map(str::to_owned),
        });
        self.world.emit(stream, expected, events, idempotency_key)
    }

    fn read_stream(&mut self, stream: &str) -> Result<(u64, Vec<Event>), String> {
        let read = self.world.read_stream(stream)?;
        if self.race.as_deref() == Some(stream) {
            self.race = None;
            let cash = json!({"transfer_id": "cash-1", "amount": 5, "from": "account-bank"});
            self.world.given(stream, "MoneyDeposited", cash);
        }
        Ok(read)
    }

    fn send(&mut self, url: &str, body: String, key: &str) -> Result<(), String> {
        self.world.send(url, body, key)
    }

    fn setting(&mut self, key: &str) -> Option<String> {
        Effects::setting(&mut self.world, key)
    }
}

impl Recorder {
    fn new(world: World) -> Self {
        Self {
            world,
            emits: Vec::new(),
            race: None,
        }
    }

    /// Hands every event to `MoneyTransfer` in one page per round until none is left.
    fn run(&mut self) -> Result<(), GuestError> {
        let mut from = 0;
        while from < self.world.events().len() {
            let page = self.world.events()[from..].to_vec();
            from = self.world.events().len();
            refract_guest::subscription::handle::<MoneyTransfer>(self, &page)?;
        }
        Ok(())
    }

    fn steps(&self) -> Vec<(&str, Expected, &str, &str)> {
        self.emits
            .iter()
            .map(|e| {
                let key = e.key.as_deref().expect("every emit has a key");
                (e.stream.as_str(), e.expected, e.event_type.as_str(), key)
            })
            .collect()
    }
}

#[test]
fn every_step_has_its_key_and_accounts_expect_the_version_read() {
    let mut world = World::new();
    open(&mut world, "account-a", 100, false);
    open(&mut world, "account-b", 0, false);
    open(&mut world, "account-c", 0, true);
    start(&mut world, "t-1", "account-a", "account-b", 10);
    start(&mut world, "t-2", "account-a", "account-c", 10);
    start(&mut world, "t-3", "account-b", "account-a", 10);
    let mut recorder = Recorder::new(world);
    recorder.run().unwrap();

    use Expected::{Any, Exact};
    let expected = [
        ("account-a", Exact(1), "MoneyWithdrawn", "t-1/withdraw"),
        ("account-a", Exact(2), "MoneyWithdrawn", "t-2/withdraw"),
        ("transfer-t-3", Any, "TransferFailed", "t-3/failed"),
        ("account-b", Exact(1), "MoneyDeposited", "t-1/deposit"),
        (
            "transfer-t-2",
            Any,
            "TransferFailedToDeposit",
            "t-2/failed-to-deposit",
        ),
        ("transfer-t-1", Any, "TransferCompleted", "t-1/completed"),
        ("account-a", Exact(3), "MoneyRefunded", "t-2/refund"),
        ("transfer-t-2", Any, "TransferRefunded", "t-2/refunded"),
    ];
    assert_eq!(recorder.steps(), expected);
}

#[test]
fn a_concurrent_write_fails_the_page_and_the_retry_decides_on_fresh_state() {
    let mut world = two_accounts(false);
    start(&mut world, "t-1", "account-a", "account-b", 30);
    let mut recorder = Recorder::new(world);
    recorder.race = Some("account-a".into());
    let error = recorder.run().unwrap_err();
    assert!(
        error.message.contains("stream account-a is at version 2"),
        "{error}"
    );
    assert_eq!(error.event_sequence, Some(3));
    assert_eq!(
        types(&recorder.world, "account-a"),
        ["AccountOpened", "MoneyDeposited"]
    );

    // The host retries the page: this time the withdrawal expects version 2.
    let mut world = recorder.world;
    world.run::<MoneyTransfer>().unwrap();
    assert_eq!(balances(&world)["account-a"], 75);
    assert_eq!(balances(&world)["account-b"], 30);
}

#[test]
fn a_replay_tries_no_money_step_again() {
    let mut world = World::new();
    open(&mut world, "account-a", 100, false);
    open(&mut world, "account-b", 0, false);
    open(&mut world, "account-c", 0, true);
    start(&mut world, "t-1", "account-a", "account-b", 10);
    start(&mut world, "t-2", "account-a", "account-c", 10);
    world.run::<MoneyTransfer>().unwrap();
    let events = world.events().len();

    // Handled again from the start: each money step finds its own trace in the
    // account and stops; only the outcomes are appended again, a no-op by their key.
    let mut recorder = Recorder::new(world);
    recorder.run().unwrap();
    assert_eq!(recorder.world.events().len(), events);
    let streams: Vec<&str> = recorder.steps().iter().map(|s| s.0).collect();
    assert_eq!(streams, ["transfer-t-1", "transfer-t-2"]);
}
