//! PostgreSQL: projection documents and progress.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgConnection;

use super::PgStore;
use super::convert::{BindKey, to_u64};
use super::doc_sets::{ensure_set, set_of};
use super::progress::{
    advance_progress, delete_version_rows, insert_progress, moved_on, record_dead_letter,
    without_nul,
};
use super::reads::SNAPSHOT;
use crate::store::{
    DocList, DocOf, DocQuery, DocRead, DocWrite, DocumentStore, Later, PageCommit, Position,
    Progress, ProjectionKey, RunStatus, StoreError, now_micros,
};

/// Documents per upsert statement, at most (the arrays are one parameter each, so
/// this bounds the statement's size, not a parameter count).
const PUT_ROWS: usize = 1_000;

/// Bytes of document bodies per upsert statement, at most (one document more than
/// that goes alone).
const PUT_BYTES: usize = 8 << 20;

/// The version's set, as a scalar subquery binding (name, version) as `$1, $2`.
pub(super) const SET_OF: &str = "(SELECT doc_set FROM progress WHERE name = $1 AND version = $2)";

#[async_trait]
impl DocumentStore for PgStore {
    async fn prepare_projection(&self, key: &ProjectionKey) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_progress(&mut tx, key).await?;
        ensure_set(&mut tx, key).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn prepare_subscription(&self, key: &ProjectionKey) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_progress(&mut tx, key).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn drop_projection(&self, key: &ProjectionKey) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // Its documents and dead letters go with it; outbox messages already
        // committed stay and are still delivered.
        delete_version_rows(&mut tx, key).await?;
        tx.commit().await?;
        self.purge_dropped_sets();
        Ok(())
    }

    async fn load_docs_within(
        &self,
        key: &ProjectionKey,
        ids: &[&str],
        max_bytes: usize,
    ) -> Result<Option<HashMap<String, String>>, StoreError> {
        // An id PostgreSQL's text cannot hold names no document.
        let ids: Vec<&str> = ids.iter().copied().filter(|id| storable(id)).collect();
        let mut tx = self.pool.begin_with(SNAPSHOT).await?;
        let Some(Some(set)) = set_of(&mut tx, key, false).await? else {
            return Ok(Some(HashMap::new()));
        };
        // Sizes first (the bodies are not read), so documents over the budget never
        // reach memory.
        let bytes: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(size), 0)::bigint FROM documents \
             WHERE set_id = $1 AND id = ANY($2::text[])",
        )
        .bind(set)
        .bind(&ids)
        .fetch_one(&mut *tx)
        .await?;
        if usize::try_from(bytes).unwrap_or(usize::MAX) > max_bytes {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT id, body::text FROM documents WHERE set_id = $1 AND id = ANY($2::text[])",
        )
        .bind(set)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut docs = HashMap::with_capacity(rows.len());
        for row in rows {
            docs.insert(row.try_get(0)?, row.try_get(1)?);
        }
        Ok(Some(docs))
    }

    async fn has_docs(&self, key: &ProjectionKey) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT EXISTS (SELECT 1 FROM documents WHERE set_id = {SET_OF})"
        )))
        .bind_key(key)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn doc_read(
        &self,
        key: &ProjectionKey,
        of: DocOf<'_>,
        later: Later<'_>,
    ) -> Result<DocRead, StoreError> {
        self.read_doc_and_later(key, of, later).await
    }

    async fn get_doc(&self, key: &ProjectionKey, id: &str) -> Result<Option<String>, StoreError> {
        if !storable(id) {
            return Ok(None);
        }
        // A subscription has no set: none of its ids names a document.
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT body::text FROM documents WHERE set_id = {SET_OF} AND id = $3"
        )))
        .bind_key(key)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn list_docs(&self, key: &ProjectionKey, q: &DocQuery) -> Result<DocList, StoreError> {
        self.list_docs_in(key, q).await
    }

    async fn commit_page(&self, key: &ProjectionKey, page: &PageCommit) -> Result<(), StoreError> {
        let position = page.position;
        let mut tx = self.pool.begin().await?;
        self.fenced(&mut tx, key, Some(position)).await?;
        // The progress row stays locked until commit: no drop or swap can change
        // the set between this check and the writes.
        let set = match set_of(&mut tx, key, true).await? {
            // Dropped under the caller (retired, rebuilt), or dropped and prepared
            // again since it started: nothing of it may land.
            None => return Err(moved_on(key, position)),
            Some(set) if page.doc_set.is_some() && set != page.doc_set => {
                return Err(moved_on(key, position));
            }
            Some(set) => set,
        };
        match set {
            Some(set) => {
                write_docs(&mut tx, set, &page.writes, position).await?;
            }
            // A subscription keeps no documents: its page commits progress alone.
            None if page.writes.is_empty() => {}
            None => return Err(StoreError::Invalid(format!("{key} keeps no documents"))),
        }
        if let Some(d) = &page.dead_letter {
            record_dead_letter(&mut tx, key, d).await?;
        }
        if !page.replayed.is_empty() {
            sqlx::query(
                "DELETE FROM dead_letters WHERE name = $1 AND version = $2 \
                 AND sequence = ANY($3::bigint[])",
            )
            .bind_key(key)
            .bind(&page.replayed)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(base) = page.base {
            let stored: Option<Position> = sqlx::query_scalar(
                "SELECT position FROM progress WHERE name = $1 AND version = $2 FOR UPDATE",
            )
            .bind_key(key)
            .fetch_optional(&mut *tx)
            .await?;
            if stored != Some(base) {
                return Err(super::progress::moved_on(key, position));
            }
        }
        advance_progress(&mut tx, key, position, page.applied, page.skipped, 0).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn progress(&self, key: &ProjectionKey) -> Result<Progress, StoreError> {
        let row = sqlx::query(
            "SELECT position, events_applied, status, error, events_skipped, effects_held, \
             doc_set FROM progress WHERE name = $1 AND version = $2",
        )
        .bind_key(key)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("progress of {key}")))?;
        let status: String = row.try_get(2)?;
        Ok(Progress {
            position: row.try_get(0)?,
            events_applied: to_u64(row.try_get(1)?, "events applied")?,
            events_skipped: to_u64(row.try_get(4)?, "events skipped")?,
            effects_held: to_u64(row.try_get(5)?, "effects held")?,
            status: RunStatus::parse(&status),
            error: row.try_get(3)?,
            doc_set: row.try_get(6)?,
        })
    }

    async fn set_status(
        &self,
        key: &ProjectionKey,
        status: RunStatus,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        // An agent's status (started, paused by its guest) is its node's to write
        // while it holds the lease, and no more once it lost it.
        let mut tx = self.pool.begin().await?;
        if self.fences.fences_status(key)? {
            self.fenced(&mut tx, key, None).await?;
        }
        sqlx::query(
            "UPDATE progress SET status = $1, error = $2, updated_at = $3 \
             WHERE name = $4 AND version = $5",
        )
        .bind(status.as_str())
        .bind(error.map(without_nul))
        .bind(now_micros())
        .bind_key(key)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Whether PostgreSQL's text can hold `s` (it cannot hold the character NUL).
fn storable(s: &str) -> bool {
    !s.contains('\0')
}

/// Puts and deletes a page's documents in `set`, inside the page's transaction: the
/// puts in batches bounded in rows and bytes (one statement each), then the deletes.
async fn write_docs(
    conn: &mut PgConnection,
    set: i64,
    writes: &[DocWrite],
    position: Position,
) -> Result<(), StoreError> {
    // One row per id (the last put wins): an upsert may not touch a row twice.
    let (mut puts, mut at) = (Vec::<(&str, &str)>::new(), HashMap::new());
    let mut deletes = Vec::new();
    for w in writes {
        match w {
            DocWrite::Put { id, body } => match at.get(id.as_str()) {
                Some(&i) => puts[i] = (id.as_str(), body.as_str()),
                None => {
                    at.insert(id.as_str(), puts.len());
                    puts.push((id.as_str(), body.as_str()));
                }
            },
            DocWrite::Delete { id } => deletes.push(id.as_str()),
        }
    }
    let mut batch = Batch::default();
    for (id, body) in puts {
        if !batch.ids.is_empty()
            && (batch.ids.len() >= PUT_ROWS || batch.bytes.saturating_add(body.len()) > PUT_BYTES)
        {
            std::mem::take(&mut batch)
                .upsert(&mut *conn, set, position)
                .await?;
        }
        batch.ids.push(id);
        batch.bodies.push(body);
        batch
            .sizes
            .push(i64::try_from(body.len()).unwrap_or(i64::MAX));
        batch.bytes = batch.bytes.saturating_add(body.len());
    }
    if !batch.ids.is_empty() {
        batch.upsert(&mut *conn, set, position).await?;
    }
    if !deletes.is_empty() {
        sqlx::query("DELETE FROM documents WHERE set_id = $1 AND id = ANY($2::text[])")
            .bind(set)
            .bind(&deletes)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Documents upserted in one statement: their ids (unique), bodies and sizes.
#[derive(Default)]
struct Batch<'a> {
    ids: Vec<&'a str>,
    bodies: Vec<&'a str>,
    sizes: Vec<i64>,
    bytes: usize,
}

impl Batch<'_> {
    /// Writes the batch's documents into `set` in one statement.
    async fn upsert(
        self,
        conn: &mut PgConnection,
        set: i64,
        position: Position,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO documents (set_id, id, body, size, updated_seq) \
         SELECT $1, u.id, u.body::json, u.size, $2 \
         FROM UNNEST($3::text[], $4::text[], $5::bigint[]) AS u(id, body, size) \
         ON CONFLICT (set_id, id) DO UPDATE SET body = excluded.body, \
         size = excluded.size, updated_seq = excluded.updated_seq",
        )
        .bind(set)
        .bind(position)
        .bind(&self.ids)
        .bind(&self.bodies)
        .bind(&self.sizes)
        .execute(conn)
        .await?;
        Ok(())
    }
}
