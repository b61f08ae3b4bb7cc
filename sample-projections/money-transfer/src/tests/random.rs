//! Many random transfers between ten accounts: each ends, and no money appears or
//! disappears.

use std::collections::BTreeMap;

use refract_guest::subscription::testing::World;

use super::replay::run_then_replay;
use super::{account, balances, open, start, types};
use crate::MoneyTransfer;

/// SplitMix64: a small deterministic generator, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
}

const ACCOUNTS: i64 = 10;

/// `account-0` to `account-9` exist (the last two reject deposits); `account-10` does not.
fn account_id(i: i64) -> String {
    format!("account-{i}")
}

#[test]
fn many_random_transfers_all_end_and_keep_the_sum() {
    let mut rng = Rng(7);
    let mut world = World::new();
    let mut total = 0;
    for i in 0..ACCOUNTS {
        let balance = rng.below(500);
        total += balance;
        open(&mut world, &account_id(i), balance, i >= ACCOUNTS - 2);
    }
    let mut transfers = BTreeMap::new();
    let mut n = 0;
    while n < 400 {
        // Several transfers at once, so their steps interleave.
        for _ in 0..=rng.below(30) {
            let id = format!("r-{n}");
            let from = account_id(rng.below(ACCOUNTS as u64 + 1));
            let to = account_id(rng.below(ACCOUNTS as u64 + 1));
            let amount = 1 + rng.below(300);
            start(&mut world, &id, &from, &to, amount);
            transfers.insert(id, (from, to, amount));
            n += 1;
        }
        world.run::<MoneyTransfer>().unwrap();
    }
    run_then_replay(&mut world);

    let mut ends: BTreeMap<String, usize> = BTreeMap::new();
    for (id, (from, to, amount)) in &transfers {
        let steps = types(&world, &format!("transfer-{id}"));
        let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
        let (from, to) = (account(&world, from), account(&world, to));
        match steps[..] {
            ["TransferStarted", "TransferCompleted"] => {
                assert_eq!(from.withdrawn.get(id), Some(amount), "{id}");
                assert_eq!(to.deposited.get(id), Some(amount), "{id}");
            }
            [
                "TransferStarted",
                "TransferFailedToDeposit",
                "TransferRefunded",
            ] => {
                assert_eq!(from.withdrawn.get(id), Some(amount), "{id}");
                assert_eq!(from.refunded.get(id), Some(amount), "{id}");
                assert!(!to.deposited.contains_key(id), "{id}");
            }
            ["TransferStarted", "TransferFailed"] => {
                assert!(!from.withdrawn.contains_key(id), "{id}");
                assert!(!to.deposited.contains_key(id), "{id}");
            }
            _ => panic!("transfer {id} did not end: {steps:?}"),
        }
        *ends.entry(steps[steps.len() - 1].to_owned()).or_default() += 1;
    }
    // The seed exercises every ending.
    assert_eq!(ends.len(), 3, "{ends:?}");
    assert_eq!(ends.values().sum::<usize>(), transfers.len());

    let projected = balances(&world);
    assert_eq!(projected.len(), ACCOUNTS as usize);
    assert_eq!(
        projected.values().sum::<i64>(),
        total,
        "money appeared or vanished"
    );
    for (id, balance) in &projected {
        assert!(*balance >= 0, "{id} is overdrawn: {balance}");
        assert_eq!(
            account(&world, id).balance,
            *balance,
            "the two folds disagree on {id}"
        );
    }
}
