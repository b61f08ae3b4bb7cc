//! Subscriptions on SQLite: a handled page's emits, outbox rows and progress in one
//! write transaction; the outbox queries of the delivery worker.

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::convert::BindKey;
use super::progress::advance_progress;
use super::{SqliteStore, append_in, to_i64, to_u64, validate};
use crate::store::subscription::{
    DeadLetter, HandledPage, OutboxCounts, OutboxMessage, SubscriptionStore,
};
use crate::store::{AppendResult, Position, ProjectionKey, StoreError, now_micros};

/// Rows per multi-row outbox INSERT (8 parameters a row).
const OUTBOX_CHUNK: usize = 500;
/// The columns [`outbox_message`] reads (a macro: queries stay literal strings).
macro_rules! due_columns {
    () => {
        "SELECT seq, message_id, name, version, team, url, body, attempts, last_error"
    };
}
/// Undelivered, not given up on, due at the bound time.
macro_rules! due {
    () => {
        "delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= ?"
    };
}

fn outbox_message(r: &sqlx::sqlite::SqliteRow) -> Result<OutboxMessage, StoreError> {
    Ok(OutboxMessage {
        seq: r.try_get(0)?,
        id: r.try_get(1)?,
        subscription: ProjectionKey {
            name: r.try_get(2)?,
            version: r.try_get(3)?,
        },
        team: r.try_get(4)?,
        url: r.try_get(5)?,
        body: r.try_get(6)?,
        attempts: u32::try_from(r.try_get::<i64, _>(7)?).unwrap_or(u32::MAX),
        last_error: r.try_get(8)?,
    })
}

#[async_trait]
impl SubscriptionStore for SqliteStore {
    async fn commit_handled(
        &self,
        key: &ProjectionKey,
        team: &str,
        page: &HandledPage,
    ) -> Result<Vec<AppendResult>, StoreError> {
        for req in &page.emits {
            validate(req, self.max_event_bytes())?;
        }
        let mut tx = self.writer().begin_with("BEGIN IMMEDIATE").await?;
        let mut results = Vec::with_capacity(page.emits.len());
        for req in &page.emits {
            results.push(append_in(&mut tx, req).await?);
        }
        let now = now_micros();
        for chunk in page.messages.chunks(OUTBOX_CHUNK) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO outbox (message_id, name, version, team, url, body, \
                 event_sequence, next_attempt_at, created_at) ",
            );
            qb.push_values(chunk, |mut row, m| {
                row.push_bind(&m.id)
                    .push_bind(&key.name)
                    .push_bind(key.version)
                    .push_bind(team)
                    .push_bind(&m.url)
                    .push_bind(&m.body)
                    .push_bind(m.event_sequence)
                    .push_bind(now)
                    .push_bind(now);
            });
            // The same message queued again (a replay) is already on its way.
            qb.push(" ON CONFLICT (message_id) DO NOTHING");
            qb.build().execute(&mut *tx).await?;
        }
        if let Some(d) = &page.dead_letter {
            record_dead_letter(&mut tx, key, d).await?;
        }
        let p = page;
        advance_progress(&mut tx, key, p.position, p.handled, p.skipped, p.held).await?;
        // The furthest position ever committed: replays up to it hold their effects.
        sqlx::query(
            "INSERT INTO effects_high_water (name, version, position) VALUES (?, ?, ?) \
             ON CONFLICT (name, version) DO UPDATE \
             SET position = MAX(position, excluded.position)",
        )
        .bind_key(key)
        .bind(p.position)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if let Some(last) = results.iter().map(|r| r.last_sequence).max() {
            let types = page.emits.iter().flat_map(|e| e.events.iter());
            self.heads
                .committed(types.map(|e| e.event_type.as_str()), last);
        }
        Ok(results)
    }

    async fn due_messages(&self, now: i64, limit: usize) -> Result<Vec<OutboxMessage>, StoreError> {
        let rows = sqlx::query(concat!(
            due_columns!(),
            " FROM outbox WHERE ",
            due!(),
            " ORDER BY next_attempt_at, seq LIMIT ?"
        ))
        .bind(now)
        .bind(to_i64(limit as u64)?)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(outbox_message).collect()
    }

    async fn due_teams(&self, now: i64) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar(concat!("SELECT DISTINCT team FROM outbox WHERE ", due!()))
                .bind(now)
                .fetch_all(self.reader())
                .await?,
        )
    }

    async fn due_team_messages(
        &self,
        team: &str,
        now: i64,
        limit: usize,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let rows = sqlx::query(concat!(
            due_columns!(),
            " FROM outbox WHERE ",
            due!(),
            " AND team = ? ORDER BY next_attempt_at, seq LIMIT ?"
        ))
        .bind(now)
        .bind(team)
        .bind(to_i64(limit as u64)?)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(outbox_message).collect()
    }

    async fn message_delivered(&self, seq: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1, last_error = NULL \
             WHERE seq = ?",
        )
        .bind(now_micros())
        .bind(seq)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn message_failed(
        &self,
        seq: i64,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<(), StoreError> {
        let now = now_micros();
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, \
             next_attempt_at = COALESCE(?, next_attempt_at), \
             gave_up_at = CASE WHEN ? IS NULL THEN ? END WHERE seq = ?",
        )
        .bind(error)
        .bind(retry_at)
        .bind(retry_at)
        .bind(now)
        .bind(seq)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn outbox_counts(&self, key: &ProjectionKey) -> Result<OutboxCounts, StoreError> {
        let row = sqlx::query(
            "SELECT \
               COALESCE(SUM(delivered_at IS NULL AND gave_up_at IS NULL), 0), \
               COALESCE(SUM(delivered_at IS NOT NULL), 0), \
               COALESCE(SUM(gave_up_at IS NOT NULL), 0) \
             FROM outbox WHERE name = ? AND version = ?",
        )
        .bind_key(key)
        .fetch_one(self.reader())
        .await?;
        let last_error: Option<String> = sqlx::query_scalar(
            "SELECT last_error FROM outbox WHERE name = ? AND version = ? \
             AND delivered_at IS NULL AND last_error IS NOT NULL ORDER BY seq DESC LIMIT 1",
        )
        .bind_key(key)
        .fetch_optional(self.reader())
        .await?;
        Ok(OutboxCounts {
            pending: to_u64(row.try_get(0)?, "outbox count")?,
            delivered: to_u64(row.try_get(1)?, "outbox count")?,
            failed: to_u64(row.try_get(2)?, "outbox count")?,
            last_error,
        })
    }

    async fn dead_letter_count(&self, key: &ProjectionKey) -> Result<u64, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM dead_letters WHERE name = ? AND version = ?")
                .bind_key(key)
                .fetch_one(self.reader())
                .await?;
        to_u64(n, "dead letter count")
    }

    async fn dead_letter_page(
        &self,
        key: &ProjectionKey,
        after: Position,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = sqlx::query(
            "SELECT sequence, error FROM dead_letters WHERE name = ? AND version = ? \
             AND sequence > ? ORDER BY sequence LIMIT ?",
        )
        .bind_key(key)
        .bind(after)
        .bind(to_i64(limit.max(1) as u64)?)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeadLetter {
                    sequence: r.try_get(0)?,
                    error: r.try_get(1)?,
                })
            })
            .collect()
    }

    async fn rewind(
        &self,
        key: &ProjectionKey,
        position: Position,
        replay_effects: bool,
    ) -> Result<(), StoreError> {
        let position = position.max(0);
        let mut tx = self.writer().begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query(
            "UPDATE progress SET position = ?, status = 'running', error = NULL, updated_at = ? \
             WHERE name = ? AND version = ?",
        )
        .bind(position)
        .bind(now_micros())
        .bind_key(key)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("progress of {key}")));
        }
        if replay_effects {
            sqlx::query(
                "UPDATE effects_high_water SET position = MIN(position, ?) \
                 WHERE name = ? AND version = ?",
            )
            .bind(position)
            .bind_key(key)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn effects_high_water(&self, key: &ProjectionKey) -> Result<Position, StoreError> {
        let position: Option<i64> = sqlx::query_scalar(
            "SELECT position FROM effects_high_water WHERE name = ? AND version = ?",
        )
        .bind_key(key)
        .fetch_optional(self.reader())
        .await?;
        Ok(position.unwrap_or(0))
    }
}

/// Records (or updates) a version's dead letter inside the caller's transaction.
pub(super) async fn record_dead_letter(
    conn: &mut sqlx::SqliteConnection,
    key: &ProjectionKey,
    d: &DeadLetter,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO dead_letters (name, version, sequence, error, created_at) \
         VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET error = excluded.error",
    )
    .bind_key(key)
    .bind(d.sequence)
    .bind(&d.error)
    .bind(now_micros())
    .execute(conn)
    .await?;
    Ok(())
}
