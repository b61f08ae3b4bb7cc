//! SQLite: appends that project inline versions in their own write transaction
//! ([`crate::store::inline`]). SQLite numbers events as it writes them (one writer,
//! rowids), so the appended events carry their sequences inside the transaction.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::sqlite::SqliteConnection;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::convert::BindKey;
use super::docs::{load_in, write_docs};
use super::progress::advance_progress;
use super::{EVENT_COLUMNS, SqliteStore, append_in, event_from_row, push_in_list, validate};
use crate::store::heads::Heads;
use crate::store::inline::InlineProgress;
use crate::store::{
    AppendRequest, AppendResult, InlineAppendError, InlineDocs, InlineOutcome, InlineProjector,
    InlineVersion, Position, RecordedEvent, RunStatus, StoreError,
};

impl SqliteStore {
    /// [`crate::store::EventStore::append_inline`] on SQLite.
    pub(super) async fn append_inline_in(
        &self,
        req: AppendRequest,
        inline: &dyn InlineProjector,
    ) -> Result<(AppendResult, Vec<InlineOutcome>), InlineAppendError> {
        validate(&req, self.max_event_bytes)?;
        let mut tx = (self.writer.begin_with("BEGIN IMMEDIATE").await).map_err(StoreError::from)?;
        let before: Position = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events")
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        let result = append_in(&mut tx, &req).await?;
        let mut outcomes = Vec::with_capacity(inline.versions().len());
        if result.first_sequence > before {
            let events = appended(&mut tx, &result).await?;
            for v in inline.versions() {
                let outcome = project_one(&mut tx, &self.heads, v, before, &events, inline).await?;
                outcomes.push(outcome);
            }
        } else {
            // A replayed idempotency key appended nothing: say whether the first
            // append's events are in the documents by now.
            for v in inline.versions() {
                let done = progress(&mut tx, v)
                    .await?
                    .is_some_and(|p| p.position >= result.last_sequence);
                outcomes.push(match done {
                    true => InlineOutcome::Projected {
                        key: v.key.clone(),
                        events: 0,
                    },
                    false => InlineOutcome::Deferred {
                        key: v.key.clone(),
                        reason: "a replayed append: its agent has not projected it yet".into(),
                    },
                });
            }
        }
        tx.commit().await.map_err(StoreError::from)?;
        let types = req.events.iter().map(|e| e.event_type.as_str());
        self.heads.committed(types, result.last_sequence);
        Ok((result, outcomes))
    }
}

/// The events the append wrote, as stored (sequences, versions, timestamps).
async fn appended(
    conn: &mut SqliteConnection,
    result: &AppendResult,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let sql =
        format!("SELECT {EVENT_COLUMNS} FROM events WHERE seq >= ? AND seq <= ? ORDER BY seq");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(result.first_sequence)
        .bind(result.last_sequence)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(event_from_row).collect()
}

/// Projects one version if it is running and caught up (no event of its types
/// between its position and the append), moving its progress to the append's last
/// event with its documents; else defers it to its agent.
async fn project_one(
    conn: &mut SqliteConnection,
    heads: &Heads,
    v: &InlineVersion,
    before: Position,
    events: &[RecordedEvent],
    inline: &dyn InlineProjector,
) -> Result<InlineOutcome, InlineAppendError> {
    let deferred = |reason: &str| InlineOutcome::Deferred {
        key: v.key.clone(),
        reason: reason.to_owned(),
    };
    let Some(p) = progress(conn, v).await? else {
        return Ok(deferred("it is being set up"));
    };
    if !p.running {
        return Ok(deferred("it is paused"));
    }
    let Some(set) = p.doc_set else {
        return Ok(deferred("it keeps no documents"));
    };
    if replaced(conn, v).await? {
        return Ok(deferred(
            "its code is being replaced or rebuilt (its agent projects the events)",
        ));
    }
    if p.position > before || behind(conn, heads, v, p.position, before).await? {
        return Ok(deferred(
            "it is catching up (its agent projects earlier events first)",
        ));
    }
    let mut docs = TxDocs { conn, set };
    let out = inline
        .project(&v.key, events, &mut docs)
        .await
        .map_err(InlineAppendError::Refused)?;
    let position = events.last().map_or(before, |e| e.sequence);
    write_docs(docs.conn, set, &out.writes, position).await?;
    let applied = out.applied as u64;
    let skipped = ((position - p.position).max(0) as u64).saturating_sub(applied);
    advance_progress(docs.conn, &v.key, position, applied, skipped, 0).await?;
    Ok(InlineOutcome::Projected {
        key: v.key.clone(),
        events: out.applied,
    })
}

/// The version's progress, inside the transaction.
async fn progress(
    conn: &mut SqliteConnection,
    v: &InlineVersion,
) -> Result<Option<InlineProgress>, StoreError> {
    let row = sqlx::query(
        "SELECT position, status, doc_set FROM progress WHERE name = ? AND version = ?",
    )
    .bind_key(&v.key)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        let status: String = r.try_get(1)?;
        Ok(InlineProgress {
            position: r.try_get(0)?,
            running: RunStatus::parse(&status) == RunStatus::Running,
            doc_set: r.try_get(2)?,
        })
    })
    .transpose()
}

/// Whether the version's code is not the one the projector runs any more, or a
/// candidate is being built beside it (its swap would hide what this append wrote).
async fn replaced(conn: &mut SqliteConnection, v: &InlineVersion) -> Result<bool, StoreError> {
    let sha: Option<String> =
        sqlx::query_scalar("SELECT sha256 FROM components WHERE name = ? AND version = ?")
            .bind_key(&v.key)
            .fetch_optional(&mut *conn)
            .await?;
    if sha.as_deref() != Some(v.sha256.as_str()) {
        return Ok(true);
    }
    let shadow: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM progress WHERE name = ? AND version = ?)")
            .bind_key(&v.key.shadow())
            .fetch_one(&mut *conn)
            .await?;
    Ok(shadow)
}

/// Whether events of the version's types lie after `position`, up to `before`.
/// The per-type heads answer "yes" without a read; "no" needs the log, scanned by
/// sequence from the version's position (no index by type: one would cost every
/// append a B-tree insert per event, for all teams, to speed up this probe). A
/// caught-up version's range is the events appended since it last moved.
async fn behind(
    conn: &mut SqliteConnection,
    heads: &Heads,
    v: &InlineVersion,
    position: Position,
    before: Position,
) -> Result<bool, StoreError> {
    if position >= before {
        return Ok(false);
    }
    if heads.last_noted_of_types(&v.event_types) > position {
        return Ok(true);
    }
    let mut qb: QueryBuilder<Sqlite> =
        QueryBuilder::new("SELECT EXISTS (SELECT 1 FROM events WHERE seq > ");
    qb.push_bind(position)
        .push(" AND seq <= ")
        .push_bind(before)
        .push(" AND event_type IN ");
    push_in_list(&mut qb, &v.event_types);
    qb.push(")");
    let found: bool = qb.build_query_scalar().fetch_one(&mut *conn).await?;
    Ok(found)
}

/// The version's documents as the append's transaction sees them.
struct TxDocs<'c> {
    conn: &'c mut SqliteConnection,
    set: i64,
}

#[async_trait]
impl InlineDocs for TxDocs<'_> {
    async fn load(
        &mut self,
        ids: &[&str],
        max_bytes: usize,
    ) -> Result<Option<HashMap<String, String>>, StoreError> {
        load_in(self.conn, self.set, ids, max_bytes).await
    }
}
