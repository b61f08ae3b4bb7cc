//! SQLite: projection documents and progress.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, QueryBuilder, Row, Sqlite, SqliteConnection};

use super::convert::BindKey;
use super::doc_sets::{SET_OF, ensure_set, set_of};
use super::progress::{advance_progress, delete_version_rows, insert_progress, moved_on};
use super::{SqliteStore, push_in_list, to_u64};
use crate::store::{
    DocList, DocOf, DocQuery, DocRead, DocWrite, DocumentStore, Later, PageCommit, Position,
    Progress, ProjectionKey, RunStatus, StoreError, now_micros,
};

/// Ids per `IN (...)` list, well under SQLite's parameter limit.
const ID_CHUNK: usize = 900;

#[async_trait]
impl DocumentStore for SqliteStore {
    async fn prepare_projection(&self, key: &ProjectionKey) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        insert_progress(&mut tx, key).await?;
        ensure_set(&mut tx, key).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn prepare_subscription(&self, key: &ProjectionKey) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        insert_progress(&mut tx, key).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn drop_projection(&self, key: &ProjectionKey) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
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
        let mut tx = self.reader().begin().await?;
        let Some(Some(set)) = set_of(&mut tx, key).await? else {
            return Ok(Some(HashMap::new()));
        };
        let docs = load_in(&mut tx, set, ids, max_bytes).await?;
        tx.commit().await?;
        Ok(docs)
    }

    async fn doc_read(
        &self,
        key: &ProjectionKey,
        of: DocOf<'_>,
        later: Later<'_>,
    ) -> Result<DocRead, StoreError> {
        self.read_doc_and_later(key, of, later).await
    }

    async fn has_docs(&self, key: &ProjectionKey) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT EXISTS (SELECT 1 FROM documents WHERE set_id = {SET_OF})"
        )))
        .bind_key(key)
        .fetch_one(self.reader())
        .await?)
    }

    async fn get_doc(&self, key: &ProjectionKey, id: &str) -> Result<Option<String>, StoreError> {
        // A subscription has no set: none of its ids names a document.
        Ok(sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT body FROM documents WHERE set_id = {SET_OF} AND id = ?"
        )))
        .bind_key(key)
        .bind(id)
        .fetch_optional(self.reader())
        .await?)
    }

    async fn list_docs(&self, key: &ProjectionKey, q: &DocQuery) -> Result<DocList, StoreError> {
        self.list_docs_in(key, q).await
    }

    async fn commit_page(&self, key: &ProjectionKey, page: &PageCommit) -> Result<(), StoreError> {
        let position = page.position;
        let mut tx = self.writer().begin().await?;
        let set = match set_of(&mut tx, key).await? {
            // Dropped under the caller (retired, rebuilt), or dropped and prepared
            // again since it started: nothing of it may land.
            None => return Err(moved_on(key, position)),
            Some(set) if page.doc_set.is_some() && set != page.doc_set => {
                return Err(moved_on(key, position));
            }
            Some(set) => set,
        };
        match set {
            Some(set) => write_docs(&mut tx, set, &page.writes, position).await?,
            // A subscription keeps no documents: its page commits progress alone.
            None if page.writes.is_empty() => {}
            None => return Err(StoreError::Invalid(format!("{key} keeps no documents"))),
        }
        if let Some(d) = &page.dead_letter {
            super::subscription::record_dead_letter(&mut tx, key, d).await?;
        }
        for chunk in page.replayed.chunks(ID_CHUNK) {
            let mut qb: QueryBuilder<Sqlite> =
                QueryBuilder::new("DELETE FROM dead_letters WHERE name = ");
            qb.push_bind(&key.name)
                .push(" AND version = ")
                .push_bind(key.version)
                .push(" AND sequence IN ");
            push_in_list(&mut qb, chunk);
            qb.build().execute(&mut *tx).await?;
        }
        if let Some(base) = page.base {
            let stored: Option<Position> =
                sqlx::query_scalar("SELECT position FROM progress WHERE name = ? AND version = ?")
                    .bind_key(key)
                    .fetch_optional(&mut *tx)
                    .await?;
            if stored != Some(base) {
                return Err(moved_on(key, position));
            }
        }
        advance_progress(&mut tx, key, position, page.applied, page.skipped, 0).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn progress(&self, key: &ProjectionKey) -> Result<Progress, StoreError> {
        let row = sqlx::query(
            "SELECT position, events_applied, status, error, events_skipped, effects_held, \
             doc_set FROM progress WHERE name = ? AND version = ?",
        )
        .bind_key(key)
        .fetch_optional(self.reader())
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
        sqlx::query(
            "UPDATE progress SET status = ?, error = ?, updated_at = ? \
             WHERE name = ? AND version = ?",
        )
        .bind(status.as_str())
        .bind(error)
        .bind(now_micros())
        .bind_key(key)
        .execute(self.writer())
        .await?;
        Ok(())
    }
}

#[cfg(test)]
impl SqliteStore {
    /// Whether the version keeps documents (a subscription does not).
    pub(super) async fn has_doc_table(&self, key: &ProjectionKey) -> Result<bool, StoreError> {
        Ok(matches!(
            set_of(&mut *self.reader().acquire().await?, key).await?,
            Some(Some(_))
        ))
    }
}

/// The documents of `ids` in `set` that exist, inside the caller's transaction;
/// `None` if together they are over `max_bytes`.
pub(super) async fn load_in(
    conn: &mut SqliteConnection,
    set: i64,
    ids: &[&str],
    max_bytes: usize,
) -> Result<Option<HashMap<String, String>>, StoreError> {
    // Sizes first (the bodies' overflow pages are not read), so documents over the
    // budget never reach memory.
    let mut total = 0usize;
    for chunk in ids.chunks(ID_CHUNK) {
        let mut qb = in_set("SELECT COALESCE(SUM(size), 0)", set, chunk);
        let bytes: i64 = qb.build_query_scalar().fetch_one(&mut *conn).await?;
        total = total.saturating_add(usize::try_from(bytes).unwrap_or(usize::MAX));
        if total > max_bytes {
            return Ok(None);
        }
    }
    let mut docs = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(ID_CHUNK) {
        let mut qb = in_set("SELECT id, body", set, chunk);
        for row in qb.build().fetch_all(&mut *conn).await? {
            docs.insert(row.try_get(0)?, row.try_get(1)?);
        }
    }
    Ok(Some(docs))
}

/// `<head> FROM documents WHERE set_id = <set> AND id IN (<ids>)`.
fn in_set<'a>(head: &str, set: i64, ids: &'a [&'a str]) -> QueryBuilder<Sqlite> {
    let mut qb = QueryBuilder::new(head);
    qb.push(" FROM documents WHERE set_id = ")
        .push_bind(set)
        .push(" AND id IN ");
    push_in_list(&mut qb, ids);
    qb
}

/// Puts and deletes a page's documents in `set`, inside the page's transaction.
pub(super) async fn write_docs(
    conn: &mut SqliteConnection,
    set: i64,
    writes: &[DocWrite],
    position: Position,
) -> Result<(), StoreError> {
    let (mut puts, mut deletes) = (Vec::new(), Vec::new());
    for w in writes {
        match w {
            DocWrite::Put { id, body } => puts.push((id.as_str(), body.as_str())),
            DocWrite::Delete { id } => deletes.push(id.as_str()),
        }
    }
    for chunk in puts.chunks(ID_CHUNK) {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO documents (set_id, id, body, size, updated_seq) ");
        qb.push_values(chunk, |mut row, (id, body)| {
            row.push_bind(set)
                .push_bind(*id)
                .push_bind(*body)
                .push_bind(i64::try_from(body.len()).unwrap_or(i64::MAX))
                .push_bind(position);
        });
        qb.push(
            " ON CONFLICT (set_id, id) DO UPDATE SET body = excluded.body, \
             size = excluded.size, updated_seq = excluded.updated_seq",
        );
        qb.build().execute(&mut *conn).await?;
    }
    for chunk in deletes.chunks(ID_CHUNK) {
        in_set("DELETE", set, chunk)
            .build()
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
