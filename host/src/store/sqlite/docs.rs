//! SQLite: projection documents and progress.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, QueryBuilder, Row, Sqlite};

use super::convert::BindKey;
use super::doc_sets::{SET_OF, ensure_set, set_of};
use super::progress::{advance_progress, delete_version_rows, insert_progress, moved_on};
use super::{SqliteStore, push_in_list, to_u64};
use crate::store::{
    AggregateRead, DocRead, DocWrite, DocumentStore, Later, PageCommit, Progress, ProjectionKey,
    RunStatus, StoreError, StreamId, now_micros,
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

    async fn load_docs(
        &self,
        key: &ProjectionKey,
        ids: &[&str],
    ) -> Result<HashMap<String, String>, StoreError> {
        let mut docs = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(ID_CHUNK) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "SELECT id, body FROM documents WHERE set_id = \
                 (SELECT doc_set FROM progress WHERE name = ",
            );
            qb.push_bind(&key.name)
                .push(" AND version = ")
                .push_bind(key.version)
                .push(") AND id IN ");
            push_in_list(&mut qb, chunk);
            for row in qb.build().fetch_all(self.reader()).await? {
                docs.insert(row.try_get(0)?, row.try_get(1)?);
            }
        }
        Ok(docs)
    }

    async fn aggregate_read(
        &self,
        key: &ProjectionKey,
        stream: &StreamId,
        later: Later<'_>,
    ) -> Result<AggregateRead, StoreError> {
        let mut tx = self.reader().begin().await?;
        let (position, doc) = super::reads::position_and_doc(&mut tx, key, stream.as_str()).await?;
        let stream_version = super::reads::stream_version(&mut tx, stream.as_str()).await?;
        let scan = super::reads::Scan {
            after: position,
            upto: None,
            types: Some(later.types),
            stream: Some(stream.as_str()),
        };
        let events = super::reads::read_within(&mut tx, scan, later.budget).await?;
        tx.commit().await?;
        Ok(AggregateRead {
            doc,
            position,
            stream_version: to_u64(stream_version, "stream version")?,
            events,
        })
    }

    async fn doc_read(
        &self,
        key: &ProjectionKey,
        id: &str,
        later: Later<'_>,
    ) -> Result<DocRead, StoreError> {
        self.read_doc_and_later(key, id, later).await
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

    async fn commit_page(&self, key: &ProjectionKey, page: &PageCommit) -> Result<(), StoreError> {
        let position = page.position;
        let puts: Vec<(&str, &str)> = page
            .writes
            .iter()
            .filter_map(|w| match w {
                DocWrite::Put { id, body } => Some((id.as_str(), body.as_str())),
                DocWrite::Delete { .. } => None,
            })
            .collect();
        let deletes: Vec<&str> = page
            .writes
            .iter()
            .filter_map(|w| match w {
                DocWrite::Delete { id } => Some(id.as_str()),
                DocWrite::Put { .. } => None,
            })
            .collect();
        let mut tx = self.writer().begin().await?;
        let set = match set_of(&mut tx, key).await? {
            Some(Some(set)) => Some(set),
            // A subscription writes no documents; with none to write its page
            // commits progress alone.
            Some(None) if page.writes.is_empty() => None,
            Some(None) => {
                return Err(StoreError::Invalid(format!("{key} keeps no documents")));
            }
            // Dropped under the caller (retired, rebuilt): nothing of it may land.
            None => return Err(moved_on(key, position)),
        };
        for chunk in puts.chunks(ID_CHUNK) {
            let mut qb: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT INTO documents (set_id, id, body, updated_seq) ");
            qb.push_values(chunk, |mut row, (id, body)| {
                row.push_bind(set)
                    .push_bind(*id)
                    .push_bind(*body)
                    .push_bind(position);
            });
            qb.push(
                " ON CONFLICT (set_id, id) DO UPDATE SET body = excluded.body, \
                 updated_seq = excluded.updated_seq",
            );
            qb.build().execute(&mut *tx).await?;
        }
        for chunk in deletes.chunks(ID_CHUNK) {
            let mut qb: QueryBuilder<Sqlite> =
                QueryBuilder::new("DELETE FROM documents WHERE set_id = ");
            qb.push_bind(set).push(" AND id IN ");
            push_in_list(&mut qb, chunk);
            qb.build().execute(&mut *tx).await?;
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
        advance_progress(&mut tx, key, position, page.applied, page.skipped, 0).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn progress(&self, key: &ProjectionKey) -> Result<Progress, StoreError> {
        let row = sqlx::query(
            "SELECT position, events_applied, status, error, events_skipped, effects_held \
             FROM progress WHERE name = ? AND version = ?",
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
