//! The money-transfer process manager of seed 002, as a refract subscription.
//!
//! A transfer moves step by step, each step reacting to the event the previous one
//! appended:
//!
//! | handled event (stream)                | appends (stream, idempotency key)                       |
//! |---------------------------------------|---------------------------------------------------------|
//! | `TransferStarted` (`transfer-<id>`)   | `MoneyWithdrawn` (from, `<id>/withdraw`) or `TransferFailed` (`transfer-<id>`, `<id>/failed`) |
//! | `MoneyWithdrawn` (from account)       | `MoneyDeposited` (to, `<id>/deposit`) or `TransferFailedToDeposit` (`transfer-<id>`, `<id>/failed-to-deposit`) |
//! | `MoneyDeposited` (to account)         | `TransferCompleted` (`transfer-<id>`, `<id>/completed`) |
//! | `TransferFailedToDeposit` (transfer)  | `MoneyRefunded` (from, `<id>/refund`)                    |
//! | `MoneyRefunded` (from account)        | `TransferRefunded` (`transfer-<id>`, `<id>/refunded`)   |
//!
//! Appends to an account expect the version just read, so a concurrent write fails the
//! page and the step is retried on fresh state. Every append carries an idempotency
//! key, and each step first looks for its own trace (the account's fold records the
//! transfers that moved money on it; the transfer stream records its outcomes), so a
//! replay never moves money twice nor decides differently the second time.
//!
//! Sharing the account fold: `export_subscription!` (like `export_projection!`) emits
//! wasm exports, and a cdylib keeps the exports of every crate linked into it. So the
//! `account-balance` projection must not depend on this crate, nor this one on it:
//! either component would then carry both worlds (tried: with `account-balance` as a
//! dependency, this component holds `refract:projection` beside `refract:subscription`).
//! A cargo feature turning an export off would not do either: features unify across
//! the packages of one build (`-p money-transfer -p account-balance`, as the test
//! artifacts build them), so it would turn off the other component's export too.
//! Each crate therefore decodes the account events with its own small enum and fold
//! ([`Account`] here, the balance document there), and this crate's tests (through a
//! dev-dependency, never linked into the component) run the `account-balance`
//! projection over the same events and check that both folds agree.

mod account;
mod events;

pub use account::Account;
pub use events::*;

use refract_guest::Envelope;
use refract_guest::subscription::{Ctx, Expected, Subscription};

/// Account streams are named with this prefix.
pub const ACCOUNT_PREFIX: &str = "account-";

/// The stream of a transfer's own events.
pub fn transfer_stream(transfer_id: &str) -> String {
    format!("transfer-{transfer_id}")
}

/// The idempotency key of a transfer's step (`withdraw`, `deposit`...).
pub fn step_key(transfer_id: &str, step: &str) -> String {
    format!("{transfer_id}/{step}")
}

/// The `money-transfer` subscription, version 1.
#[derive(Debug, Clone, Copy, Default)]
pub struct MoneyTransfer;

impl Subscription for MoneyTransfer {
    type Event = ProcessEvent;
    const NAME: &'static str = "money-transfer";
    const VERSION: u32 = 1;
    /// Each event folds whole account streams: small pages commit in good time,
    /// even while a replay reads long accounts.
    const MAX_PAGE_SIZE: Option<u32> = Some(100);

    fn handle(ctx: &mut Ctx<'_>, event: &Envelope<ProcessEvent>) -> Result<(), String> {
        let account = &event.stream_id;
        match &event.event {
            ProcessEvent::TransferStarted(e) => on_started(ctx, e),
            ProcessEvent::MoneyWithdrawn(e) => on_withdrawn(ctx, account, e),
            ProcessEvent::MoneyDeposited(e) => {
                let done = TransferCompleted {
                    transfer_id: e.transfer_id.clone(),
                };
                append_outcome(ctx, &done, &e.transfer_id, "completed")
            }
            ProcessEvent::TransferFailedToDeposit(e) => on_failed_to_deposit(ctx, e),
            ProcessEvent::MoneyRefunded(e) => {
                let done = TransferRefunded {
                    transfer_id: e.transfer_id.clone(),
                };
                append_outcome(ctx, &done, &e.transfer_id, "refunded")
            }
        }
    }
}

refract_guest::export_subscription!(MoneyTransfer);

/// Withdraws from `from`, or fails the transfer if it cannot.
fn on_started(ctx: &mut Ctx<'_>, e: &TransferStarted) -> Result<(), String> {
    let id = &e.transfer_id;
    if outcomes(ctx, id)?
        .iter()
        .any(|o| matches!(o, TransferOutcome::TransferFailed(_)))
    {
        return Ok(()); // decided before: a replay keeps the decision
    }
    if let Some(reason) = invalid(e) {
        return fail(ctx, id, reason);
    }
    let (from_version, account) = read_account(ctx, &e.from)?;
    if account.withdrawn.contains_key(id) {
        return Ok(()); // withdrawn before
    }
    if let Some(reason) = account.refuses_withdrawal(&e.from, e.amount) {
        return fail(ctx, id, reason);
    }
    let withdrawn = MoneyWithdrawn {
        transfer_id: id.clone(),
        amount: e.amount,
        to: e.to.clone(),
    };
    append(
        ctx,
        &e.from,
        Expected::Exact(from_version),
        &withdrawn,
        id,
        "withdraw",
    )
}

/// Why a transfer is refused whatever the accounts hold, if it is.
fn invalid(e: &TransferStarted) -> Option<String> {
    if e.amount <= 0 {
        Some(format!("the amount must be positive, not {}", e.amount))
    } else if e.from == e.to {
        Some(format!("cannot transfer from {} to itself", e.from))
    } else {
        [&e.from, &e.to]
            .into_iter()
            .find(|s| !s.starts_with(ACCOUNT_PREFIX))
            .map(|s| format!("{s:?} is not an account stream ({ACCOUNT_PREFIX}*)"))
    }
}

/// Records that the transfer was refused before any money moved.
fn fail(ctx: &mut Ctx<'_>, transfer_id: &str, reason: String) -> Result<(), String> {
    let failed = TransferFailed {
        transfer_id: transfer_id.to_owned(),
        reason,
    };
    append_outcome(ctx, &failed, transfer_id, "failed")
}

/// Deposits to `to`, or records that it refused the deposit.
fn on_withdrawn(ctx: &mut Ctx<'_>, from: &str, e: &MoneyWithdrawn) -> Result<(), String> {
    let id = &e.transfer_id;
    if outcomes(ctx, id)?
        .iter()
        .any(|o| matches!(o, TransferOutcome::TransferFailedToDeposit(_)))
    {
        return Ok(()); // decided before: a replay keeps the decision
    }
    let (to_version, account) = read_account(ctx, &e.to)?;
    if account.deposited.contains_key(id) {
        return Ok(()); // deposited before
    }
    if let Some(reason) = account.refuses_deposit(&e.to, e.amount) {
        let failed = TransferFailedToDeposit {
            transfer_id: id.clone(),
            from: from.to_owned(),
            amount: e.amount,
            reason,
        };
        return append_outcome(ctx, &failed, id, "failed-to-deposit");
    }
    let deposited = MoneyDeposited {
        transfer_id: id.clone(),
        amount: e.amount,
        from: from.to_owned(),
    };
    append(
        ctx,
        &e.to,
        Expected::Exact(to_version),
        &deposited,
        id,
        "deposit",
    )
}

/// Gives the withdrawn amount back to `from`.
fn on_failed_to_deposit(ctx: &mut Ctx<'_>, e: &TransferFailedToDeposit) -> Result<(), String> {
    let id = &e.transfer_id;
    let (from_version, account) = read_account(ctx, &e.from)?;
    if account.refunded.contains_key(id) {
        return Ok(()); // refunded before
    }
    // Refund what was withdrawn for this transfer, and nothing if nothing was: a
    // stray TransferFailedToDeposit must not create money.
    let Some(&amount) = account.withdrawn.get(id) else {
        return Ok(());
    };
    let refunded = MoneyRefunded {
        transfer_id: id.clone(),
        amount,
    };
    append(
        ctx,
        &e.from,
        Expected::Exact(from_version),
        &refunded,
        id,
        "refund",
    )
}

/// An account's version and state, folded a page of its stream at a time.
fn read_account(ctx: &mut Ctx<'_>, stream: &str) -> Result<(u64, Account), String> {
    ctx.fold_stream::<AccountEvent, _>(stream, Account::default(), |account, e| {
        account.apply(&e.event)
    })
}

/// The outcomes already recorded on a transfer's stream.
fn outcomes(ctx: &mut Ctx<'_>, transfer_id: &str) -> Result<Vec<TransferOutcome>, String> {
    let stream = ctx.read_stream::<TransferOutcome>(&transfer_stream(transfer_id))?;
    Ok(stream.events.into_iter().map(|e| e.event).collect())
}

/// Appends an outcome to the transfer's stream.
fn append_outcome<E: EventType>(
    ctx: &mut Ctx<'_>,
    event: &E,
    transfer_id: &str,
    step: &str,
) -> Result<(), String> {
    let stream = transfer_stream(transfer_id);
    append(ctx, &stream, Expected::Any, event, transfer_id, step)
}

/// Appends one event with the step's idempotency key.
fn append<E: EventType>(
    ctx: &mut Ctx<'_>,
    stream: &str,
    expected: Expected,
    event: &E,
    transfer_id: &str,
    step: &str,
) -> Result<(), String> {
    let key = step_key(transfer_id, step);
    ctx.emit(stream, expected, E::TYPE, event, Some(&key))?;
    Ok(())
}

#[cfg(test)]
mod tests;
