//! Each account's balance: one document per `account-*` stream, folded from the
//! account events the `money-transfer` process manager appends (seed 002).
//!
//! This crate does not depend on `money-transfer`, nor it on this one: both export a
//! component, and a cdylib keeps the exports of every crate linked into it. So the
//! account events are decoded here with their own small enum (only the fields the
//! balance needs; serde skips the rest), and `money-transfer`'s tests run this
//! projection over their events to check that both folds agree.

use refract_guest::{Envelope, Projection};
use serde::{Deserialize, Serialize};

/// Account streams are named with this prefix; other streams get no document.
pub const ACCOUNT_PREFIX: &str = "account-";

/// The account events handled; each variant name is an event type.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub enum AccountEvent {
    /// The account was opened: the first event of its stream.
    AccountOpened {
        /// Who owns it.
        owner: String,
        /// Its balance when opened.
        initial_balance: i64,
        /// Whether it refuses deposits (false when absent).
        #[serde(default)]
        rejects_deposits: bool,
    },
    /// A transfer took money out.
    MoneyWithdrawn {
        /// How much.
        amount: i64,
    },
    /// A transfer put money in.
    MoneyDeposited {
        /// How much.
        amount: i64,
    },
    /// A failed transfer gave money back.
    MoneyRefunded {
        /// How much.
        amount: i64,
    },
}

/// The balance document of one account: the stream id is its id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountBalance {
    /// The account's stream id.
    pub id: String,
    /// Who owns it.
    pub owner: String,
    /// Its balance: initial - withdrawn + deposited + refunded.
    pub balance: i64,
    /// Whether it refuses deposits.
    pub rejects_deposits: bool,
    /// The total withdrawn from it.
    pub withdrawn: i64,
    /// The total deposited to it.
    pub deposited: i64,
    /// The total refunded to it.
    pub refunded: i64,
}

impl AccountBalance {
    /// The document an `AccountOpened` on stream `id` starts; `None` for other events.
    pub fn open(id: &str, event: &AccountEvent) -> Option<Self> {
        match event {
            AccountEvent::AccountOpened {
                owner,
                initial_balance,
                rejects_deposits,
            } => Some(Self {
                id: id.to_owned(),
                owner: owner.clone(),
                balance: *initial_balance,
                rejects_deposits: *rejects_deposits,
                ..Self::default()
            }),
            _ => None,
        }
    }

    /// Folds one event into an opened account; a second `AccountOpened` changes nothing.
    pub fn apply(&mut self, event: &AccountEvent) {
        match *event {
            AccountEvent::AccountOpened { .. } => {}
            AccountEvent::MoneyWithdrawn { amount } => {
                self.balance = self.balance.saturating_sub(amount);
                self.withdrawn = self.withdrawn.saturating_add(amount);
            }
            AccountEvent::MoneyDeposited { amount } => {
                self.balance = self.balance.saturating_add(amount);
                self.deposited = self.deposited.saturating_add(amount);
            }
            AccountEvent::MoneyRefunded { amount } => {
                self.balance = self.balance.saturating_add(amount);
                self.refunded = self.refunded.saturating_add(amount);
            }
        }
    }

    /// Folds a whole stream, oldest first: events before `AccountOpened` are ignored.
    pub fn fold<'a>(id: &str, events: impl IntoIterator<Item = &'a AccountEvent>) -> Option<Self> {
        let mut doc: Option<Self> = None;
        for e in events {
            match &mut doc {
                Some(d) => d.apply(e),
                None => doc = Self::open(id, e),
            }
        }
        doc
    }
}

/// The `account-balance` projection, version 1.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccountBalanceProjection;

impl Projection for AccountBalanceProjection {
    type Event = AccountEvent;
    type Doc = AccountBalance;
    const NAME: &'static str = "account-balance";
    const VERSION: u32 = 1;

    fn create(id: &str, event: &Envelope<AccountEvent>) -> Option<AccountBalance> {
        if !id.starts_with(ACCOUNT_PREFIX) {
            return None;
        }
        AccountBalance::open(id, &event.event)
    }

    fn apply(doc: &mut AccountBalance, event: &Envelope<AccountEvent>) {
        doc.apply(&event.event);
    }
}

refract_guest::export_projection!(AccountBalanceProjection);

#[cfg(test)]
mod tests;
