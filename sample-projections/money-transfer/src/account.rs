//! What the process manager knows of an account: folded from its stream each time.

use std::collections::BTreeMap;

use refract_guest::Envelope;

use crate::events::AccountEvent;

/// An account as its events leave it: balance, whether it takes deposits, and which
/// transfers already moved money on it (so a replayed step is recognised).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Account {
    /// Whether it was opened; events before `AccountOpened` are ignored.
    pub opened: bool,
    /// Its balance.
    pub balance: i64,
    /// Whether it refuses deposits.
    pub rejects_deposits: bool,
    /// Amount withdrawn, by transfer id.
    pub withdrawn: BTreeMap<String, i64>,
    /// Amount deposited, by transfer id.
    pub deposited: BTreeMap<String, i64>,
    /// Amount refunded, by transfer id.
    pub refunded: BTreeMap<String, i64>,
}

impl Account {
    /// Folds an account stream's events, oldest first.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a Envelope<AccountEvent>>) -> Self {
        let mut account = Self::default();
        for e in events {
            account.apply(&e.event);
        }
        account
    }

    /// Folds one event in. A second `AccountOpened` changes nothing.
    pub fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::AccountOpened(opened) if !self.opened => {
                self.opened = true;
                self.balance = opened.initial_balance;
                self.rejects_deposits = opened.rejects_deposits;
            }
            _ if !self.opened => {}
            AccountEvent::AccountOpened(_) => {}
            AccountEvent::MoneyWithdrawn(e) => {
                self.balance = self.balance.saturating_sub(e.amount);
                *self.withdrawn.entry(e.transfer_id.clone()).or_default() += e.amount;
            }
            AccountEvent::MoneyDeposited(e) => {
                self.balance = self.balance.saturating_add(e.amount);
                *self.deposited.entry(e.transfer_id.clone()).or_default() += e.amount;
            }
            AccountEvent::MoneyRefunded(e) => {
                self.balance = self.balance.saturating_add(e.amount);
                *self.refunded.entry(e.transfer_id.clone()).or_default() += e.amount;
            }
        }
    }

    /// Why `amount` cannot be withdrawn from the account `id`, if it cannot.
    pub fn refuses_withdrawal(&self, id: &str, amount: i64) -> Option<String> {
        if !self.opened {
            Some(format!("account {id} does not exist"))
        } else if self.balance < amount {
            Some(format!(
                "insufficient funds: {id} has {}, the transfer needs {amount}",
                self.balance
            ))
        } else {
            None
        }
    }

    /// Why `amount` cannot be deposited to the account `id`, if it cannot.
    pub fn refuses_deposit(&self, id: &str, amount: i64) -> Option<String> {
        if !self.opened {
            Some(format!("account {id} does not exist"))
        } else if self.rejects_deposits {
            Some(format!("account {id} rejects deposits"))
        } else if self.balance.checked_add(amount).is_none() {
            Some(format!("the balance of account {id} would overflow"))
        } else {
            None
        }
    }
}
