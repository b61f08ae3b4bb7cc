//! The events of transfers and accounts: their type names and JSON data.
//!
//! Amounts are integers in the currency's smallest unit (cents). Accounts are streams
//! named `account-<anything>`; a transfer's events go to the stream `transfer-<transfer_id>`.

use serde::{Deserialize, Serialize};

/// An event this crate appends: its type name in the store.
pub trait EventType: Serialize {
    /// The event type.
    const TYPE: &'static str;
}

macro_rules! event_type {
    ($($name:ident),* $(,)?) => {
        $(impl EventType for $name {
            const TYPE: &'static str = stringify!($name);
        })*
    };
}

event_type!(
    AccountOpened,
    TransferStarted,
    MoneyWithdrawn,
    MoneyDeposited,
    MoneyRefunded,
    TransferFailed,
    TransferFailedToDeposit,
    TransferCompleted,
    TransferRefunded,
);

/// An account was opened (stream `account-*`), the first event of its stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountOpened {
    /// Who owns it.
    pub owner: String,
    /// Its balance when opened.
    pub initial_balance: i64,
    /// Whether deposits to it are refused (a transfer to it is refunded).
    #[serde(default)]
    pub rejects_deposits: bool,
}

/// A client asked to move money (stream `transfer-<transfer_id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferStarted {
    /// The transfer's id, unique.
    pub transfer_id: String,
    /// The account stream debited.
    pub from: String,
    /// The account stream credited.
    pub to: String,
    /// How much, positive.
    pub amount: i64,
}

/// The transfer's amount left the `from` account (on that account's stream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyWithdrawn {
    /// The transfer.
    pub transfer_id: String,
    /// How much.
    pub amount: i64,
    /// The account stream it goes to.
    pub to: String,
}

/// The transfer's amount reached the `to` account (on that account's stream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyDeposited {
    /// The transfer.
    pub transfer_id: String,
    /// How much.
    pub amount: i64,
    /// The account stream it came from.
    pub from: String,
}

/// A withdrawn amount went back to the `from` account (on that account's stream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyRefunded {
    /// The transfer.
    pub transfer_id: String,
    /// How much.
    pub amount: i64,
}

/// The transfer was refused before any money moved (on the transfer stream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferFailed {
    /// The transfer.
    pub transfer_id: String,
    /// Why, for people.
    pub reason: String,
}

/// The `to` account refused the deposit; a refund follows (on the transfer stream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferFailedToDeposit {
    /// The transfer.
    pub transfer_id: String,
    /// The account stream to refund.
    pub from: String,
    /// How much.
    pub amount: i64,
    /// Why, for people.
    pub reason: String,
}

/// The money arrived: the transfer is done (on the transfer stream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferCompleted {
    /// The transfer.
    pub transfer_id: String,
}

/// The money went back: the transfer is done (on the transfer stream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRefunded {
    /// The transfer.
    pub transfer_id: String,
}

/// The events the process manager reacts to; each variant name is the event type.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub enum ProcessEvent {
    /// Withdraw, or fail the transfer.
    TransferStarted(TransferStarted),
    /// Deposit, or fail to deposit.
    MoneyWithdrawn(MoneyWithdrawn),
    /// Complete the transfer.
    MoneyDeposited(MoneyDeposited),
    /// Refund.
    TransferFailedToDeposit(TransferFailedToDeposit),
    /// Mark the transfer refunded.
    MoneyRefunded(MoneyRefunded),
}

/// The events of an account stream the process manager decides on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub enum AccountEvent {
    /// Opened.
    AccountOpened(AccountOpened),
    /// Debited by a transfer.
    MoneyWithdrawn(MoneyWithdrawn),
    /// Credited by a transfer.
    MoneyDeposited(MoneyDeposited),
    /// Credited back by a failed transfer.
    MoneyRefunded(MoneyRefunded),
}

/// The outcomes recorded on a transfer stream.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub enum TransferOutcome {
    /// Refused before any money moved.
    TransferFailed(TransferFailed),
    /// The deposit was refused.
    TransferFailedToDeposit(TransferFailedToDeposit),
    /// Done.
    TransferCompleted(TransferCompleted),
    /// Refunded.
    TransferRefunded(TransferRefunded),
}
