//! PostgreSQL: conversions between its values and the store's types (integers,
//! rows, transaction ids, key binds).

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::{Query, QueryAs, QueryScalar};
use sqlx::{Postgres, Row};

use crate::store::{ProjectionKey, RecordedEvent, StoreError};

/// Binds a version's name and version: the `name = $n AND version = $n+1` most
/// statements on progress, documents and effects key their rows by.
pub(super) trait BindKey {
    /// The query with `key`'s name and version bound as its next two parameters.
    fn bind_key(self, key: &ProjectionKey) -> Self;
}

impl BindKey for Query<'_, Postgres, PgArguments> {
    fn bind_key(self, key: &ProjectionKey) -> Self {
        self.bind(key.name.clone()).bind(i64::from(key.version))
    }
}

impl<O> BindKey for QueryScalar<'_, Postgres, O, PgArguments> {
    fn bind_key(self, key: &ProjectionKey) -> Self {
        self.bind(key.name.clone()).bind(i64::from(key.version))
    }
}

impl<O> BindKey for QueryAs<'_, Postgres, O, PgArguments> {
    fn bind_key(self, key: &ProjectionKey) -> Self {
        self.bind(key.name.clone()).bind(i64::from(key.version))
    }
}

/// Converts a stored integer that must not be negative.
pub(super) fn to_u64(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what}: {v}")))
}

/// Converts a count or version into the stored integer.
pub(super) fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Invalid(format!("{v} is too large")))
}

/// A stored version number (BIGINT) as the registry's `u32`.
pub(super) fn to_version(v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("version out of range: {v}")))
}

/// The columns [`event_from_row`] reads, from `log l JOIN events e`.
pub(super) const EVENT_COLUMNS: &str = "l.seq, e.stream_id, e.stream_version, e.event_type, \
     e.data, e.metadata, e.tenant, e.created_at";

/// The join every event read goes through: only ordered (sequenced) events exist
/// for readers.
pub(super) const EVENT_FROM: &str = "log l JOIN events e ON e.position = l.position";

/// An event from a row of [`EVENT_COLUMNS`].
pub(super) fn event_from_row(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    Ok(RecordedEvent {
        sequence: row.try_get(0)?,
        stream_id: row.try_get(1)?,
        stream_version: to_u64(row.try_get(2)?, "stream version")?,
        event_type: row.try_get(3)?,
        data: row.try_get(4)?,
        metadata: row.try_get(5)?,
        tenant: row.try_get(6)?,
        timestamp: row.try_get(7)?,
    })
}
