//! Subscriptions on PostgreSQL: a handled page's emits, outbox rows and progress in
//! one transaction; the outbox queries of the delivery worker.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::{PgConnection, PgRow};

use super::PgStore;
use super::append::append_in;
use super::convert::{BindKey, to_i64, to_u64, to_version};
use super::progress::{advance_progress, record_dead_letter, without_nul};
use crate::store::checks::validate;
use crate::store::subscription::{
    DeadLetter, HandledPage, NewMessage, OutboxCounts, OutboxMessage, SubscriptionStore,
};
use crate::store::{AppendResult, Position, ProjectionKey, StoreError, now_micros};

/// The columns [`outbox_message`] reads (a macro: queries stay literal strings).
macro_rules! due_columns {
    () => {
        "SELECT seq, message_id, name, version, team, url, body, attempts, last_error"
    };
}
/// Not claimed by another live node (`$2`: this process's instance, `$3`: a
/// lease's life in seconds): unclaimed, claimed by this process (a pass of its
/// that ended early), or by one whose heartbeat stopped.
macro_rules! unclaimed {
    () => {
        "(claimed_by IS NULL OR claimed_by = $2 OR NOT EXISTS (SELECT 1 FROM nodes n \
         WHERE n.instance = outbox.claimed_by \
         AND n.heartbeat_at > clock_timestamp() - make_interval(secs => $3)))"
    };
}
/// Undelivered, not given up on, due at `$1`.
macro_rules! due {
    () => {
        "delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= $1"
    };
}

fn outbox_message(r: &PgRow) -> Result<OutboxMessage, StoreError> {
    Ok(OutboxMessage {
        seq: r.try_get(0)?,
        id: r.try_get(1)?,
        subscription: ProjectionKey {
            name: r.try_get(2)?,
            version: to_version(r.try_get(3)?)?,
        },
        team: r.try_get(4)?,
        url: r.try_get(5)?,
        body: r.try_get(6)?,
        attempts: u32::try_from(r.try_get::<i64, _>(7)?).unwrap_or(u32::MAX),
        last_error: r.try_get(8)?,
    })
}

#[async_trait]
impl SubscriptionStore for PgStore {
    async fn commit_handled(
        &self,
        key: &ProjectionKey,
        team: &str,
        page: &HandledPage,
    ) -> Result<Vec<AppendResult>, StoreError> {
        for req in &page.emits {
            validate(req, self.max_event_bytes())?;
        }
        let mut tx = self.pool.begin().await?;
        self.fenced(&mut tx, key, Some(page.position)).await?;
        let mut appended = Vec::with_capacity(page.emits.len());
        for req in &page.emits {
            appended.push(append_in(&mut tx, req).await?);
        }
        queue_messages(&mut tx, key, team, &page.messages).await?;
        if let Some(d) = &page.dead_letter {
            record_dead_letter(&mut tx, key, d).await?;
        }
        let p = page;
        advance_progress(&mut tx, key, p.position, p.handled, p.skipped, p.held).await?;
        // The furthest position ever committed: replays up to it hold their effects.
        sqlx::query(
            "INSERT INTO effects_high_water (name, version, position) VALUES ($1, $2, $3) \
             ON CONFLICT (name, version) DO UPDATE \
             SET position = GREATEST(effects_high_water.position, excluded.position)",
        )
        .bind_key(key)
        .bind(p.position)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if appended.is_empty() {
            return Ok(Vec::new());
        }
        self.sequence.notify_one();
        self.results(&appended).await
    }

    async fn due_messages(&self, now: i64, limit: usize) -> Result<Vec<OutboxMessage>, StoreError> {
        let rows = sqlx::query(concat!(
            due_columns!(),
            " FROM outbox WHERE ",
            due!(),
            " ORDER BY next_attempt_at, seq LIMIT $2"
        ))
        .bind(now)
        .bind(to_i64(limit as u64)?)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(outbox_message).collect()
    }

    async fn due_teams(&self, now: i64) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(concat!(
            "SELECT DISTINCT team FROM outbox WHERE ",
            due!(),
            " AND ",
            unclaimed!()
        ))
        .bind(now)
        .bind(self.fences.instance())
        .bind(self.fences.ttl_s())
        .fetch_all(&self.pool)
        .await?)
    }

    async fn due_team_messages(
        &self,
        team: &str,
        now: i64,
        limit: usize,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        // Claimed for this node (several nodes: each message is delivered by one
        // at a time; `SKIP LOCKED` passes over another node's claim being made).
        let mut rows = sqlx::query(concat!(
            "UPDATE outbox SET claimed_by = $2 WHERE seq IN (SELECT seq FROM outbox WHERE ",
            due!(),
            " AND ",
            unclaimed!(),
            " AND team = $4 ORDER BY next_attempt_at, seq LIMIT $5 FOR UPDATE SKIP LOCKED) \
             RETURNING seq, message_id, name, version, team, url, body, attempts, last_error, \
             next_attempt_at"
        ))
        .bind(now)
        .bind(self.fences.instance())
        .bind(self.fences.ttl_s())
        .bind(team)
        .bind(to_i64(limit as u64)?)
        .fetch_all(&self.pool)
        .await?;
        rows.sort_by_key(|r| {
            let due: i64 = r.try_get(9).unwrap_or_default();
            let seq: i64 = r.try_get(0).unwrap_or_default();
            (due, seq)
        });
        rows.iter().map(outbox_message).collect()
    }

    async fn message_delivered(&self, seq: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET delivered_at = $1, attempts = attempts + 1, last_error = NULL \
             WHERE seq = $2",
        )
        .bind(now_micros())
        .bind(seq)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn message_failed(
        &self,
        seq: i64,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $1, \
             next_attempt_at = COALESCE($2, next_attempt_at), \
             gave_up_at = CASE WHEN $2 IS NULL THEN $3 END WHERE seq = $4",
        )
        .bind(without_nul(error))
        .bind(retry_at)
        .bind(now_micros())
        .bind(seq)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn outbox_counts(&self, key: &ProjectionKey) -> Result<OutboxCounts, StoreError> {
        // One statement: the counts and the last error are of one moment.
        let row = sqlx::query(
            "SELECT \
               COUNT(*) FILTER (WHERE delivered_at IS NULL AND gave_up_at IS NULL), \
               COUNT(*) FILTER (WHERE delivered_at IS NOT NULL), \
               COUNT(*) FILTER (WHERE gave_up_at IS NOT NULL), \
               (SELECT last_error FROM outbox WHERE name = $1 AND version = $2 \
                AND delivered_at IS NULL AND last_error IS NOT NULL \
                ORDER BY seq DESC LIMIT 1) \
             FROM outbox WHERE name = $1 AND version = $2",
        )
        .bind_key(key)
        .fetch_one(&self.pool)
        .await?;
        Ok(OutboxCounts {
            pending: to_u64(row.try_get(0)?, "outbox count")?,
            delivered: to_u64(row.try_get(1)?, "outbox count")?,
            failed: to_u64(row.try_get(2)?, "outbox count")?,
            last_error: row.try_get(3)?,
        })
    }

    async fn dead_letter_count(&self, key: &ProjectionKey) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM dead_letters WHERE name = $1 AND version = $2",
        )
        .bind_key(key)
        .fetch_one(&self.pool)
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
            "SELECT sequence, error FROM dead_letters WHERE name = $1 AND version = $2 \
             AND sequence > $3 ORDER BY sequence LIMIT $4",
        )
        .bind_key(key)
        .bind(after)
        .bind(to_i64(limit.max(1) as u64)?)
        .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        // The UPDATE locks the progress row until commit: a page committing under
        // the rewind waits for it, and its guard then sees the rewound position.
        let done = sqlx::query(
            "UPDATE progress SET position = $1, status = 'running', error = NULL, \
             updated_at = $2 WHERE name = $3 AND version = $4",
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
                "UPDATE effects_high_water SET position = LEAST(position, $1) \
                 WHERE name = $2 AND version = $3",
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
            "SELECT position FROM effects_high_water WHERE name = $1 AND version = $2",
        )
        .bind_key(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(position.unwrap_or(0))
    }
}

/// Queues a page's messages inside the caller's transaction, in one statement, in
/// the page's order. A message id already queued (by a replay, or twice in one
/// page) is already on its way: it is not queued again.
async fn queue_messages(
    conn: &mut PgConnection,
    key: &ProjectionKey,
    team: &str,
    messages: &[NewMessage],
) -> Result<(), StoreError> {
    if messages.is_empty() {
        return Ok(());
    }
    let (mut ids, mut urls, mut bodies, mut events) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for m in messages {
        ids.push(m.id.as_str());
        urls.push(m.url.as_str());
        bodies.push(m.body.as_str());
        events.push(m.event_sequence);
    }
    let now = now_micros();
    sqlx::query(
        "INSERT INTO outbox (message_id, name, version, team, url, body, event_sequence, \
         next_attempt_at, created_at) \
         SELECT u.id, $1, $2, $3, u.url, u.body, u.ev, $4, $4 \
         FROM UNNEST($5::text[], $6::text[], $7::text[], $8::bigint[]) \
             WITH ORDINALITY AS u(id, url, body, ev, n) \
         ORDER BY u.n ON CONFLICT (message_id) DO NOTHING",
    )
    .bind_key(key)
    .bind(team)
    .bind(now)
    .bind(&ids)
    .bind(&urls)
    .bind(&bodies)
    .bind(&events)
    .execute(conn)
    .await?;
    Ok(())
}
