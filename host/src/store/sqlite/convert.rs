//! SQLite: conversions between its values and the store's types (integers, rows,
//! `IN` lists, errors). The only place a sqlx error becomes a [`StoreError`].

use sqlx::query::{Query, QueryAs, QueryScalar};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{QueryBuilder, Row, Sqlite};

use crate::store::{ProjectionKey, RecordedEvent, StoreError};

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Backend {
            source: Box::new(e),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate {
            source: Box::new(e),
        }
    }
}

/// Binds a version's name and version: the `name = ? AND version = ?` that most
/// statements on progress, documents and effects key their rows by.
pub(super) trait BindKey {
    /// The query with `key`'s name and version bound as its next two parameters.
    fn bind_key(self, key: &ProjectionKey) -> Self;
}

impl BindKey for Query<'_, Sqlite, SqliteArguments> {
    fn bind_key(self, key: &ProjectionKey) -> Self {
        self.bind(key.name.as_str()).bind(key.version)
    }
}

impl<O> BindKey for QueryScalar<'_, Sqlite, O, SqliteArguments> {
    fn bind_key(self, key: &ProjectionKey) -> Self {
        self.bind(key.name.clone()).bind(key.version)
    }
}

impl<O> BindKey for QueryAs<'_, Sqlite, O, SqliteArguments> {
    fn bind_key(self, key: &ProjectionKey) -> Self {
        self.bind(key.name.clone()).bind(key.version)
    }
}

/// Appends `(?, ?, ...)` binding `items`; `(NULL)` when there are none, which
/// matches nothing.
pub(super) fn push_in_list<'a, T>(qb: &mut QueryBuilder<Sqlite>, items: &'a [T])
where
    &'a T: sqlx::Encode<'a, Sqlite> + sqlx::Type<Sqlite>,
{
    qb.push("(");
    let mut sep = qb.separated(", ");
    for item in items {
        sep.push_bind(item);
    }
    if items.is_empty() {
        sep.push("NULL");
    }
    qb.push(")");
}

/// Converts a stored integer that must not be negative.
pub(super) fn to_u64(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what}: {v}")))
}

/// Converts a version into the stored integer.
pub(super) fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Invalid(format!("{v} is too large")))
}

pub(super) fn event_from_row(row: &SqliteRow) -> Result<RecordedEvent, StoreError> {
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

pub(super) const EVENT_COLUMNS: &str =
    "seq, stream_id, stream_version, event_type, data, metadata, tenant, created_at";
