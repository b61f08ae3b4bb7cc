//! `tenant-rollup`: accounts and issues counted per tenant (seed 004's rollup by
//! tenant, its `ACount`/`BCount` made into accounts and issues).
//!
//! It shows *rollup by tenant*: the documents are tenants, not streams. Each event
//! counts in the document of the tenant it was appended for; events appended without
//! a tenant count in [`refract_guest::NO_TENANT`]. No event field is read, so the
//! events' data may hold anything.

use refract_guest::{Documents, Envelope, Projection};
use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;
mod workload;

pub use workload::{TENANTS, WorkloadEvent, workload};

/// The events counted; their data is not read (but must be a JSON object).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub enum TenantEvent {
    /// An account was opened.
    AccountOpened {},
    /// An issue was raised.
    IssueOpened {},
    /// An issue was closed.
    IssueClosed {},
}

/// One tenant's counts; its id is the tenant (or [`refract_guest::NO_TENANT`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollup {
    /// The tenant, as the document id names it.
    pub tenant: String,
    /// Accounts opened.
    pub accounts: u64,
    /// Issues opened and not closed yet.
    ///
    /// Signed so that more closes than opens shows as a negative count instead of
    /// being clamped to zero, which would hide the surplus.
    pub open_issues: i64,
    /// Issues closed.
    pub issues_closed: u64,
}

/// The projection.
pub struct TenantRollup;

impl Projection for TenantRollup {
    type Event = TenantEvent;
    type Doc = Rollup;
    const NAME: &'static str = "tenant-rollup";
    const VERSION: u32 = 1;
    const DOCUMENTS: Documents = Documents::PerTenant;

    fn create(id: &str, event: &Envelope<TenantEvent>) -> Option<Rollup> {
        let mut doc = Rollup {
            tenant: id.to_owned(),
            ..Rollup::default()
        };
        Self::apply(&mut doc, event);
        Some(doc)
    }

    fn apply(doc: &mut Rollup, event: &Envelope<TenantEvent>) {
        match event.event {
            TenantEvent::AccountOpened {} => doc.accounts += 1,
            TenantEvent::IssueOpened {} => doc.open_issues += 1,
            TenantEvent::IssueClosed {} => {
                doc.open_issues -= 1;
                doc.issues_closed += 1;
            }
        }
    }
}

refract_guest::export_projection!(TenantRollup);
