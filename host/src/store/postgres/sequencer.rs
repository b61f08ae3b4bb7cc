//! The sequencer: gives committed events their place in the global order, behind
//! the transaction fence.
//!
//! A pass, in one transaction that holds the `sequencer` row's lock (so one pass
//! runs at a time across every node), reads the events after the row's cursor
//! `(transaction_id, position)` whose transaction is below the xmin of the
//! statement's own snapshot, in `(transaction_id, position)` order, and numbers
//! them on from the row's last sequence. Every transaction below xmin has ended,
//! so the statement sees each of them whole or not at all (rolled back) and no
//! event can appear behind the cursor later. A transaction that stays open holds
//! the fence, and with it every event committed after it started: they are
//! numbered when it ends, in a later pass, never skipped.
//!
//! Passes run after this process's appends, when another node's append notifies
//! ([`super::APPENDED_CHANNEL`]), and on a short poll while events wait behind the
//! fence (nothing notifies when someone else's transaction ends).

use std::time::Duration;

use sqlx::Row;
use sqlx::postgres::PgListener;

use super::convert::xid;
use super::{APPENDED_CHANNEL, HEAD_CHANNEL, PgStore};
use crate::store::{Position, StoreError};

/// Events numbered per pass (one statement each way).
const PASS_EVENTS: i64 = 20_000;
/// How often to look again while events wait behind an open transaction.
const FENCE_POLL: Duration = Duration::from_millis(10);
/// How often to look again when nothing was notified (a lost notification, a
/// listener reconnecting).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// What one pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pass {
    /// The last sequence given out (the head).
    pub head: Position,
    /// Events numbered by this pass.
    pub numbered: u64,
    /// Committed events are waiting behind the fence (an open transaction).
    pub held: bool,
}

impl PgStore {
    /// Numbers every event that is behind the fence now, a batch per transaction.
    pub(super) async fn sequence_pass(&self) -> Result<Pass, StoreError> {
        // A look without the lock first: a pass that finds nothing to number would
        // still lock the row, which gives its transaction an id, so its commit
        // waits for a WAL flush, and the next pass waits for that (one pass often
        // finds nothing: the appender's own and the one its notification wakes).
        // The committed cursor read here is at most the real one, so this never
        // misses an event that a locked pass at this moment would number.
        // `ORDER BY .. LIMIT 1`, not `EXISTS`: PostgreSQL drops an order inside `EXISTS`,
        // and after five runs a prepared statement may keep a generic plan, which for
        // `EXISTS` here is a scan of every event (2 s at 1M events when none is
        // there); the ordered limit keeps the index `events_fence_order`.
        let (ready, waiting, head): (bool, bool, Position) = sqlx::query_as(
            "SELECT (SELECT e.position FROM events e \
                 WHERE (e.transaction_id, e.position) > (s.transaction_id, s.position) \
                   AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
                 ORDER BY e.transaction_id, e.position LIMIT 1) IS NOT NULL, \
             (SELECT e.position FROM events e \
                 WHERE (e.transaction_id, e.position) > (s.transaction_id, s.position) \
                 ORDER BY e.transaction_id, e.position LIMIT 1) IS NOT NULL, \
             s.seq FROM sequencer s WHERE s.id = 1",
        )
        .fetch_one(&self.pool)
        .await?;
        if !ready {
            return Ok(Pass {
                head,
                numbered: 0,
                held: waiting,
            });
        }
        let mut numbered = 0u64;
        loop {
            let mut tx = self.pool.begin().await?;
            let row = sqlx::query(
                "SELECT transaction_id::text, position, seq FROM sequencer WHERE id = 1 \
                 FOR UPDATE",
            )
            .fetch_one(&mut *tx)
            .await?;
            let (cursor_tx, cursor_pos, seq): (String, i64, i64) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            // One statement: the fence and the rows come from the same snapshot.
            let last = sqlx::query(
                "WITH next AS ( \
                     SELECT position, transaction_id, event_type, created_at FROM events \
                     WHERE (transaction_id, position) > ($1::text::xid8, $2) \
                       AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
                     ORDER BY transaction_id, position LIMIT $3), \
                 ins AS ( \
                     INSERT INTO log (seq, position, event_type, created_at) \
                     SELECT $4 + row_number() OVER (ORDER BY transaction_id, position), \
                            position, event_type, created_at FROM next \
                     RETURNING seq) \
                 SELECT l.tx, l.pos, (SELECT COUNT(*) FROM ins), \
                        (SELECT array_agg(DISTINCT event_type) FROM next) FROM ( \
                     SELECT transaction_id::text AS tx, position AS pos FROM next \
                     ORDER BY transaction_id DESC, position DESC LIMIT 1) l",
            )
            .bind(&cursor_tx)
            .bind(cursor_pos)
            .bind(PASS_EVENTS)
            .bind(seq)
            .fetch_optional(&mut *tx)
            .await?;
            let mut types: Vec<String> = Vec::new();
            let (cursor_tx, cursor_pos, head, count) = match last {
                Some(row) => {
                    let (last_tx, last_pos, count): (String, i64, i64) =
                        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
                    types = row
                        .try_get::<Option<Vec<String>>, _>(3)?
                        .unwrap_or_default();
                    xid(&last_tx)?;
                    let head = seq + count;
                    sqlx::query(
                        "UPDATE sequencer SET transaction_id = $1::text::xid8, position = $2, \
                         seq = $3 WHERE id = 1",
                    )
                    .bind(&last_tx)
                    .bind(last_pos)
                    .bind(head)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(HEAD_CHANNEL)
                        .bind(format!("{head} {}", self.token))
                        .execute(&mut *tx)
                        .await?;
                    (last_tx, last_pos, head, count)
                }
                None => (cursor_tx, cursor_pos, seq, 0),
            };
            if count == PASS_EVENTS {
                // A full batch: more may be behind the fence already.
                tx.commit().await?;
                numbered += count as u64;
                self.heads.committed(types.iter().map(String::as_str), head);
                continue;
            }
            // Whatever is committed past the cursor now waits for an open transaction.
            // Not `EXISTS` (see the look before the lock).
            let held: bool = sqlx::query_scalar(
                "SELECT (SELECT position FROM events \
                 WHERE (transaction_id, position) > ($1::text::xid8, $2) \
                 ORDER BY transaction_id, position LIMIT 1) IS NOT NULL",
            )
            .bind(&cursor_tx)
            .bind(cursor_pos)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            numbered += count as u64;
            if count > 0 {
                self.heads.committed(types.iter().map(String::as_str), head);
            }
            return Ok(Pass {
                head,
                numbered,
                held,
            });
        }
    }

    /// Waits until the event at `position` (committed) has its sequence.
    pub(super) async fn sequenced(&self, position: i64) -> Result<Position, StoreError> {
        let mut head = self.heads.subscribe();
        loop {
            let pass = self.sequence_pass().await?;
            let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM log WHERE position = $1")
                .bind(position)
                .fetch_optional(&self.pool)
                .await?;
            if let Some(seq) = seq {
                return Ok(seq);
            }
            if !pass.held {
                // Not committed (a caller's bug) or not visible yet: look again soon.
                tracing::debug!(position, "waiting for an event's sequence");
            }
            let _ = tokio::time::timeout(FENCE_POLL, head.changed()).await;
        }
    }
}

/// Starts this process's sequencer and the listener that wakes it (and moves the
/// head) on other nodes' notifications.
pub(super) fn spawn(store: PgStore) {
    let listen = store.clone();
    tokio::spawn(async move { listen.listen().await });
    tokio::spawn(async move { store.run_sequencer().await });
}

impl PgStore {
    /// Passes until the store closes: when woken, and on a poll.
    async fn run_sequencer(&self) {
        let mut closed = self.closed.subscribe();
        let mut wait = IDLE_POLL;
        while !*closed.borrow() {
            tokio::select! {
                () = self.sequence.notified() => {}
                () = tokio::time::sleep(wait) => {}
                _ = closed.changed() => {}
            }
            if *closed.borrow() || self.pool.is_closed() {
                return;
            }
            wait = match self.sequence_pass().await {
                Ok(pass) if pass.held => FENCE_POLL,
                Ok(_) => IDLE_POLL,
                Err(e) => {
                    if self.pool.is_closed() {
                        return;
                    }
                    tracing::warn!(error = %e, "sequencing events failed; retrying");
                    IDLE_POLL
                }
            };
        }
    }

    /// Another node's sequencer ordered events up to the notified head (ours are
    /// known by type already).
    pub(super) fn head_notified(&self, payload: &str) {
        let mut parts = payload.split(' ');
        let head = parts.next().and_then(|h| h.parse::<Position>().ok());
        let token = parts.next().and_then(|t| t.parse::<u64>().ok());
        if let Some(head) = head
            && token != Some(self.token)
        {
            self.heads.committed_elsewhere(head);
        }
    }

    /// Relays notifications: another node appended (sequence), another node's
    /// sequencer moved the head (wake the agents).
    async fn listen(&self) {
        let mut closed = self.closed.subscribe();
        let mut listener = match PgListener::connect_with(&self.pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for notifications; polling only");
                return;
            }
        };
        if let Err(e) = listener.listen_all([APPENDED_CHANNEL, HEAD_CHANNEL]).await {
            tracing::warn!(error = %e, "cannot listen for notifications; polling only");
            return;
        }
        loop {
            tokio::select! {
                _ = closed.changed() => return,
                n = listener.try_recv() => match n {
                    Ok(Some(n)) if n.channel() == APPENDED_CHANNEL => self.sequence.notify_one(),
                    Ok(Some(n)) => self.head_notified(n.payload()),
                    // The connection was lost and is reconnected: what was
                    // notified meanwhile is found by a pass.
                    Ok(None) => self.sequence.notify_one(),
                    Err(e) => {
                        if *closed.borrow() || self.pool.is_closed() {
                            return;
                        }
                        tracing::warn!(error = %e, "notification listener failed; retrying");
                        tokio::time::sleep(IDLE_POLL).await;
                    }
                },
            }
        }
    }
}
