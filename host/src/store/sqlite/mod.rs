//! The embedded SQLite backend: one file in WAL mode, one writer connection (so
//! commits land in sequence order) and a pool of readers.
//!
//! This file opens the database (pools, migrations) and tracks the head; appends
//! are in `append`, the event store in `events`, documents in `docs` (their sets,
//! one per version, in `doc_sets`), progress in `progress`, and conversions (rows,
//! integers, sqlx errors) in `convert`.

mod append;
mod convert;
mod doc_list;
mod doc_sets;
#[cfg(test)]
mod doc_sets_tests;
mod docs;
mod events;
mod inline;
mod legacy;
mod progress;
mod reads;
#[cfg(test)]
mod reads_tests;
mod registry;
#[cfg(test)]
mod registry_tests;
mod shadow;
mod subscription;
#[cfg(test)]
mod subscription_tests;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::checks::validate;
use super::heads::Heads;
use super::{EventStore, Store, StoreError};
use append::{append_in, first_use};
use convert::{EVENT_COLUMNS, event_from_row, push_in_list, to_i64, to_u64};

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// The head and the last sequence of each event type, with their watchers.
    heads: Heads,
    /// Largest event (data and metadata, in bytes) an append or an emit may carry.
    max_event_bytes: usize,
    /// Wakes the background purge of dropped document sets.
    purge: std::sync::Arc<tokio::sync::Notify>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and runs the migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode survives a killed process; only power loss can drop
            // the last commits.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory");
        // An embedded connection cannot be dropped by a server: no ping before each
        // use (it is a round trip to the connection's worker thread).
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("../migrations/sqlite").run(&writer).await?;
        legacy::adopt_legacy_tables(&writer).await?;
        // A whole page crosses from sqlx's worker thread in one go instead of 50 rows
        // at a time (each hand-off is a thread wake-up).
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(options.read_only(true).row_buffer_size(16 * 1024))
            .await?;
        let store = Self {
            writer,
            reader,
            heads: Heads::new(0),
            max_event_bytes: super::DEFAULT_MAX_EVENT_BYTES,
            purge: Default::default(),
        };
        // Sets dropped before a restart are purged now.
        doc_sets::spawn_purger(store.writer.clone(), store.purge.clone());
        let head = store.head().await?;
        Ok(Self {
            heads: Heads::new(head),
            ..store
        })
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

    /// Wakes the purge of dropped document sets (after the drop is committed).
    pub(super) fn purge_dropped_sets(&self) {
        self.purge.notify_one();
    }

    pub(crate) fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.reader
    }
}

#[async_trait]
impl Store for SqliteStore {
    /// Writes a checkpoint of the WAL and closes the pools.
    async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
        // The purger sees the closed pool and ends.
        self.purge.notify_one();
    }
}
