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
//! Passes run right after this process's appends (which wait for their numbers),
//! when something notifies [`super::APPENDED_CHANNEL`] (a tool that inserted
//! events), and on a poll: short while events wait behind the fence (nothing
//! notifies when someone else's transaction ends), else every half second.

use std::sync::atomic::Ordering;
use std::time::Duration;

use sqlx::Row;
use sqlx::postgres::PgListener;

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

/// One pass as one statement (one round trip, its own transaction): lock the
/// sequencer's row, number the events behind the fence after its cursor, move the
/// cursor, notify the new head.
///
/// The fence is the snapshot's oldest running transaction *that may write here*:
/// `pg_snapshot_xmin` would count every database's transactions (ids are
/// cluster-wide), so another application's long transaction on the same server
/// would hold this store's order back. A running id is left out only when
/// `pg_stat_activity` shows it belongs to a session of another database (a
/// session never changes database); one it does not show (ended since, hidden,
/// prepared) counts, the careful side. Without running ones, the snapshot's xmax. The statement's snapshot gives both the fence and
/// the rows, so every transaction below the fence is seen whole; if the row's lock
/// was waited for, the cursor is the row's latest (the pass waited for moved it)
/// and the older snapshot's fence is only more careful.
const PASS: &str = "\
WITH cur AS ( \
    SELECT transaction_id, position, seq FROM sequencer WHERE id = 1 FOR UPDATE), \
snap AS (SELECT pg_current_snapshot() AS s), \
fence AS (SELECT COALESCE( \
    (SELECT MIN(x) FROM snap, pg_snapshot_xip(snap.s) AS x \
     WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a \
         WHERE a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND a.backend_xid::text::bigint = (x::text::bigint & 4294967295))), \
    (SELECT pg_snapshot_xmax(s) FROM snap)) AS xid), \
next AS ( \
    SELECT e.position, e.transaction_id, e.event_type, e.created_at FROM events e \
    WHERE (e.transaction_id, e.position) > \
          ((SELECT transaction_id FROM cur), (SELECT position FROM cur)) \
      AND e.transaction_id < (SELECT xid FROM fence) \
    ORDER BY e.transaction_id, e.position LIMIT $1), \
ins AS ( \
    INSERT INTO log (seq, position, event_type, created_at) \
    SELECT cur.seq + row_number() OVER (ORDER BY n.transaction_id, n.position), \
           n.position, n.event_type, n.created_at \
    FROM next n, cur RETURNING seq), \
last AS ( \
    SELECT transaction_id, position FROM next \
    ORDER BY transaction_id DESC, position DESC LIMIT 1), \
upd AS ( \
    UPDATE sequencer s SET transaction_id = last.transaction_id, \
        position = last.position, seq = cur.seq + (SELECT COUNT(*) FROM next) \
    FROM last, cur WHERE s.id = 1 RETURNING s.seq) \
SELECT (SELECT seq FROM cur), (SELECT COUNT(*) FROM ins), \
    (SELECT array_agg(DISTINCT event_type) FROM next), \
    (SELECT 1 FROM events e \
     WHERE e.transaction_id >= (SELECT xid FROM fence) \
       AND (e.transaction_id, e.position) > \
           ((SELECT transaction_id FROM cur), (SELECT position FROM cur)) \
     ORDER BY e.transaction_id, e.position LIMIT 1) IS NOT NULL, \
    (SELECT COUNT(*) FROM (SELECT pg_notify($2, upd.seq::text || ' ' || $3) FROM upd) n)";

impl PgStore {
    /// Numbers every event that is behind the fence now, a batch per pass.
    pub(super) async fn sequence_pass(&self) -> Result<Pass, StoreError> {
        let ticket = self.passes.0.fetch_add(1, Ordering::SeqCst);
        let pass = self.pass_to_fence().await;
        if pass.is_ok() {
            self.passes.1.fetch_max(ticket + 1, Ordering::SeqCst);
        }
        pass
    }

    /// Numbers every event behind the fence, a batch per statement.
    async fn pass_to_fence(&self) -> Result<Pass, StoreError> {
        let mut numbered = 0u64;
        loop {
            let row = sqlx::query(PASS)
                .bind(PASS_EVENTS)
                .bind(HEAD_CHANNEL)
                .bind(self.token.to_string())
                .fetch_one(&self.sequencer)
                .await?;
            let before: i64 = row.try_get(0)?;
            let count: i64 = row.try_get(1)?;
            let types: Vec<String> = row
                .try_get::<Option<Vec<String>>, _>(2)?
                .unwrap_or_default();
            let held: bool = row.try_get(3)?;
            // A pass whose caller went away before it moved the head (its append
            // dropped mid-statement) left the head behind: bring it up.
            if before > self.heads.now() {
                self.heads.committed_elsewhere(before);
            }
            let head = before + count;
            numbered += count as u64;
            if count > 0 {
                self.heads.committed(types.iter().map(String::as_str), head);
            }
            // A full batch: more may be behind the fence already.
            if count < PASS_EVENTS {
                return Ok(Pass {
                    head,
                    numbered,
                    held,
                });
            }
        }
    }

    /// Waits until the committed events at `positions` have their sequences, and
    /// returns them by position.
    pub(super) async fn sequences_of(
        &self,
        positions: &[i64],
    ) -> Result<std::collections::HashMap<i64, Position>, StoreError> {
        let mut head = self.heads.subscribe();
        // Passes numbered from here on started after these events committed.
        let since = self.passes.0.load(Ordering::SeqCst);
        loop {
            // The events are committed: a failure here must not reach the caller
            // as a failed append (it would append them again). Try until it works.
            match self.try_sequences_of(positions, since).await {
                Ok(Some(found)) => return Ok(found),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "looking up appended events' sequences"),
            }
            // Behind the fence (an older transaction is still open), or the database
            // failed a moment: look again soon.
            let _ = tokio::time::timeout(FENCE_POLL, head.changed()).await;
        }
    }

    /// The sequences of `positions` if all of them have one: looked up first (a
    /// pass of another appender may have numbered them), else after a pass of our
    /// own. One pass in flight per process: appenders queue on the mutex, not on
    /// the sequencer row, and most find their events numbered when their turn
    /// comes. Holding the mutex while looking also means a found number's pass has
    /// moved the head (and woken the watchers of its types) before we answer.
    async fn try_sequences_of(
        &self,
        positions: &[i64],
        since: u64,
    ) -> Result<Option<std::collections::HashMap<i64, Position>>, StoreError> {
        // Waited for another pass: it may have numbered ours (else our pass will).
        let (_pass, waited) = match self.passing.try_lock() {
            Ok(pass) => (pass, false),
            Err(_) => (self.passing.lock().await, true),
        };
        // A pass that started after our commit has ended: if ours are not numbered,
        // they are behind the fence, and another pass now would find them there too
        // (the background sequencer polls while events are held).
        let passed_since = self.passes.1.load(Ordering::SeqCst) > since;
        if (waited || passed_since)
            && let Some(found) = self.numbered(positions).await?
        {
            return Ok(Some(found));
        }
        if passed_since {
            return Ok(None);
        }
        self.sequence_pass().await?;
        self.numbered(positions).await
    }

    /// The sequences of `positions`, if every one has one.
    async fn numbered(
        &self,
        positions: &[i64],
    ) -> Result<Option<std::collections::HashMap<i64, Position>>, StoreError> {
        let found: Vec<(i64, i64)> =
            sqlx::query_as("SELECT position, seq FROM log WHERE position = ANY($1)")
                .bind(positions)
                .fetch_all(&self.pool)
                .await?;
        let found: std::collections::HashMap<i64, Position> = found.into_iter().collect();
        Ok(positions
            .iter()
            .all(|p| found.contains_key(p))
            .then_some(found))
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
            if *closed.borrow() || self.sequencer.is_closed() {
                return;
            }
            let pass = {
                let _pass = self.passing.lock().await;
                self.sequence_pass().await
            };
            wait = match pass {
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
