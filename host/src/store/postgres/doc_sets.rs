//! PostgreSQL: document sets (one per projection version) and the background purge
//! of dropped ones.

use std::sync::Arc;

use sqlx::postgres::PgPool;
use tokio::sync::{Notify, watch};

/// Starts the background purge of dropped sets; `wake` is notified after a drop;
/// the task ends when `closed` turns true.
pub(super) fn spawn_purger(_pool: PgPool, _wake: Arc<Notify>, _closed: watch::Receiver<bool>) {}

/// Marks a version's set dropped (before its progress row goes, in the same
/// transaction): its documents are invisible at once and purged later.
pub(super) async fn drop_set(
    _conn: &mut sqlx::postgres::PgConnection,
    _key: &crate::store::ProjectionKey,
) -> Result<(), crate::store::StoreError> {
    todo!()
}
