//! The PostgreSQL backend: for a team that runs PostgreSQL for everything, and
//! for several daemon nodes on one database (leases in `cluster`).
//!
//! The global order is gap-safe (see `migrations/postgres/0001_init.sql` and
//! `sequencer`): appends insert events under positions handed out by an identity
//! column, which concurrent transactions commit out of order; a sequencer reads
//! them behind the transaction fence, in `(transaction_id, position)` order, and
//! numbers them densely. Readers only ever see numbered events, so a consumer's
//! position is one number that grows in delivery order with no gap, the skipped
//! count is exact, and guests keep the WIT promise that sequences only grow. An
//! event committed late by a slow transaction is numbered after the ones before
//! the fence: never skipped, never waited for with a timeout.
//!
//! This file opens the database (pool, migrations, background tasks) and tracks
//! the head; appends are in `append`, event reads in `events` and `reads`, the
//! sequencer in `sequencer`, documents in `docs` (their sets in `doc_sets`),
//! progress in `progress`, the registry in `registry`, subscriptions and the
//! outbox in `subscription`, shadow swaps in `shadow`.
//!
//! Every write that checks before it writes locks what it checked (`FOR UPDATE`):
//! unlike SQLite's one writer, PostgreSQL runs writers side by side.

mod append;
mod cluster;
#[cfg(test)]
mod cluster_tests;
mod convert;
mod doc_list;
mod doc_sets;
#[cfg(test)]
mod doc_sets_tests;
mod docs;
#[cfg(test)]
mod docs_tests;
mod events;
#[cfg(test)]
mod outbox_tests;
mod progress;
mod reads;
mod registry;
#[cfg(test)]
mod registry_tests;
mod sequencer;
mod shadow;
mod subscription;
#[cfg(test)]
mod subscription_tests;
#[cfg(test)]
mod test_db;
#[cfg(test)]
mod tests;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tokio::sync::{Notify, watch};

use super::heads::Heads;

use super::{Position, Store, StoreError};

/// A channel that wakes every node's sequencer (for tools that insert events).
pub(super) const APPENDED_CHANNEL: &str = "refract_appended";
/// The channel a sequencer notifies with the new head: every node's agents wake.
pub(super) const HEAD_CHANNEL: &str = "refract_head";

/// The PostgreSQL store.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The sequencer's connections: commits without waiting for the disk. Safe:
    /// a pass only orders what is committed, deterministically, so one lost in a
    /// crash is redone with the same numbers; and whoever reads a sequence and
    /// commits (synchronously) flushes the log up to it, pass included.
    sequencer: PgPool,
    /// The head and the last sequence of each event type, with their watchers.
    heads: Heads,
    /// Tells this process's head notifications from other nodes'.
    token: u64,
    /// Largest event (data and metadata, in bytes) an append or an emit may carry.
    max_event_bytes: usize,
    /// Wakes the background purge of dropped document sets.
    purge: Arc<Notify>,
    /// Wakes this process's sequencer (events were committed).
    sequence: Arc<Notify>,
    /// Set when the store closes: the background tasks end.
    closed: watch::Sender<bool>,
    /// Held by this process's pass in flight: appenders waiting for their numbers
    /// wait for that pass instead of queueing passes of their own on the row lock.
    passing: Arc<tokio::sync::Mutex<()>>,
    /// Passes started by this process (each takes the next number before its
    /// snapshot) and passes ended (the number after the last one that ended): an
    /// appender's events not numbered by a pass that started after its commit are
    /// held behind the fence, and it waits instead of passing again.
    passes: Arc<(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64)>,
    /// This process as a cluster node and the leases it holds.
    fences: Arc<cluster::Fences>,
    /// Connections holding teams' locks across nodes (a lifecycle change each):
    /// apart from the pool, so changes in progress never starve appends.
    locks: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`) and runs the migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        // Appends commit synchronously whatever the server's default: the
        // sequencer's asynchronous commits are safe only on top of that.
        let options = PgConnectOptions::from_str(url)?
            .application_name("refract")
            .options([("synchronous_commit", "on")]);
        // No ping before each use (a round trip per statement an emit or an append
        // makes): a connection the server dropped fails its next statement, which
        // callers retry as a store failure, and the pool replaces it.
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .test_before_acquire(false)
            .after_release(|conn, _| Box::pin(async move { Ok(outside_transaction(conn).await) }))
            .connect_with(options.clone())
            .await?;
        let locks = PgPoolOptions::new()
            .max_connections(8)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(30))
            .after_release(|conn, _| Box::pin(async move { Ok(outside_transaction(conn).await) }))
            .connect_lazy_with(options.clone());
        let sequencer = PgPoolOptions::new()
            .max_connections(2)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .test_before_acquire(false)
            .connect_with(options.options([("synchronous_commit", "off")]))
            .await?;
        let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
            .fetch_one(&pool)
            .await?;
        if version < 130_000 {
            return Err(StoreError::Invalid(format!(
                "PostgreSQL {}.{} is too old: refract needs 13 or later (xid8, pg_current_snapshot)",
                version / 10_000,
                version % 10_000 / 100
            )));
        }
        // Two nodes starting at once on a new database: one migrates, the other
        // waits on sqlx's advisory lock and finds it done.
        sqlx::migrate!("../migrations/postgres").run(&pool).await?;
        // Transaction ids restart in another cluster (a dump restored, logical
        // replication): with the stored cursor ahead of them, nothing new would
        // ever be ordered. Refuse rather than hang every append.
        let ahead: bool = sqlx::query_scalar(
            "SELECT transaction_id >= pg_snapshot_xmax(pg_current_snapshot()) \
             FROM sequencer WHERE id = 1",
        )
        .fetch_one(&pool)
        .await?;
        if ahead {
            return Err(StoreError::Invalid(
                "this database's event order was written by another PostgreSQL cluster (its \
                 transaction ids are ahead of this server's: restored from a dump or \
                 replicated?); refract cannot order new events after it"
                    .into(),
            ));
        }
        let head: Position = sqlx::query_scalar("SELECT seq FROM sequencer WHERE id = 1")
            .fetch_one(&pool)
            .await?;
        let store = Self {
            pool,
            sequencer,
            heads: Heads::new(head),
            token: rand_token(),
            max_event_bytes: super::DEFAULT_MAX_EVENT_BYTES,
            purge: Arc::default(),
            sequence: Arc::default(),
            closed: watch::channel(false).0,
            passing: Arc::default(),
            passes: Arc::default(),
            fences: Arc::default(),
            locks,
        };
        doc_sets::spawn_purger(
            store.pool.clone(),
            store.purge.clone(),
            store.closed.subscribe(),
        );
        sequencer::spawn(store.clone());
        Ok(store)
    }

    /// The same store with another maximum event size (bytes of data and metadata).
    pub fn with_max_event_bytes(mut self, max: usize) -> Self {
        self.max_event_bytes = max.max(1);
        self
    }

    /// The largest event an append or an emit may carry, in bytes.
    pub fn max_event_bytes(&self) -> usize {
        self.max_event_bytes
    }

    /// The pool, for tests that look at the rows themselves.
    #[cfg(test)]
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Wakes the purge of dropped document sets (after the drop is committed).
    pub(super) fn purge_dropped_sets(&self) {
        self.purge.notify_one();
    }

    /// The last sequence given out, as stored.
    async fn stored_head(&self) -> Result<Position, StoreError> {
        Ok(sqlx::query_scalar("SELECT seq FROM sequencer WHERE id = 1")
            .fetch_one(&self.pool)
            .await?)
    }
}

/// A number that tells this process apart from other nodes on one database.
fn rand_token() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

#[async_trait]
impl Store for PgStore {
    /// Stops the background tasks and closes the pool.
    async fn close(&self) {
        self.closed.send_replace(true);
        self.purge.notify_one();
        self.sequence.notify_one();
        self.sequencer.close().await;
        self.locks.close().await;
        self.pool.close().await;
    }

    fn cluster(&self) -> Option<&dyn super::cluster::ClusterStore> {
        Some(self)
    }
}

/// Whether a connection going back to the pool is outside any transaction. A
/// caller dropped while its `BEGIN` was on the wire (a client gone mid-request, a
/// read abandoned) leaves the server in a transaction that sqlx does not know of,
/// and the next user of the connection would run inside it (an append failed with
/// "cannot execute UPDATE in a read-only transaction"). `now()` is frozen at a
/// transaction's start, so it differs from the statement's own start inside an old
/// one; such a connection is closed, not reused (the server rolls it back). Asked
/// with the simple protocol: one message, so a statement that is its own
/// transaction starts both clocks at once (with the extended protocol's several
/// messages they differ, and every connection would look left in a transaction).
async fn outside_transaction(conn: &mut sqlx::PgConnection) -> bool {
    use sqlx::Row;
    let fresh = sqlx::raw_sql("SELECT now() = statement_timestamp()")
        .fetch_one(&mut *conn)
        .await
        .and_then(|row| row.try_get::<bool, _>(0));
    match fresh {
        Ok(true) => true,
        Ok(false) => {
            tracing::warn!("a pooled connection was left in a transaction: closed");
            false
        }
        Err(_) => false,
    }
}
