//! SQLite: projection documents and progress.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, QueryBuilder, Row, Sqlite};

use super::progress::{advance_progress, delete_version_rows, insert_progress};
use super::{SqliteStore, push_in_list, to_u64};
use crate::store::{
    AggregateRead, DocRead, DocWrite, DocumentStore, PageCommit, Progress, ProjectionKey,
    ReadBudget, RunStatus, StoreError, StreamId, now_micros,
};

/// Ids per `IN (...)` list, well under SQLite's parameter limit.
const ID_CHUNK: usize = 900;

/// The quoted name of a version's document table, refusing names that could escape.
pub(super) fn table(key: &ProjectionKey) -> Result<String, StoreError> {
    let name = key.doc_table();
    if crate::identity::is_internal_name(&name) {
        Ok(format!("\"{name}\""))
    } else {
        Err(StoreError::Invalid(format!(
            "invalid projection name in {key}"
        )))
    }
}

#[async_trait]
impl DocumentStore for SqliteStore {
    async fn prepare_projection(&self, key: &ProjectionKey) -> Result<(), StoreError> {
        let t = table(key)?;
        let mut tx = self.writer().begin().await?;
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TABLE IF NOT EXISTS {t} (id TEXT PRIMARY KEY, body TEXT NOT NULL, \
             updated_seq INTEGER NOT NULL) WITHOUT ROWID"
        )))
        .execute(&mut *tx)
        .await?;
        insert_progress(&mut tx, key).await?;
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
        let t = table(key)?;
        let mut tx = self.writer().begin().await?;
        sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {t}")))
            .execute(&mut *tx)
            .await?;
        // Its dead letters go with it; outbox messages already committed stay and
        // are still delivered.
        delete_version_rows(&mut tx, key).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn load_docs(
        &self,
        key: &ProjectionKey,
        ids: &[&str],
    ) -> Result<HashMap<String, String>, StoreError> {
        let t = table(key)?;
        let mut docs = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(ID_CHUNK) {
            let mut qb: QueryBuilder<Sqlite> =
                QueryBuilder::new(format!("SELECT id, body FROM {t} WHERE id IN "));
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
        types: &[String],
        budget: ReadBudget,
    ) -> Result<AggregateRead, StoreError> {
        let t = table(key)?;
        let mut tx = self.reader().begin().await?;
        let (position, doc) =
            super::reads::position_and_doc(&mut tx, key, &t, stream.as_str()).await?;
        let stream_version = super::reads::stream_version(&mut tx, stream.as_str()).await?;
        let scan = super::reads::Scan {
            after: position,
            upto: None,
            types: Some(types),
            stream: Some(stream.as_str()),
        };
        let events = super::reads::read_within(&mut tx, scan, budget).await?;
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
        types: &[String],
        budget: ReadBudget,
    ) -> Result<DocRead, StoreError> {
        self.read_doc_and_later(key, &table(key)?, id, types, budget)
            .await
    }

    async fn has_docs(&self, key: &ProjectionKey) -> Result<bool, StoreError> {
        let t = table(key)?;
        Ok(
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT EXISTS (SELECT 1 FROM {t})")))
                .fetch_one(self.reader())
                .await?,
        )
    }

    async fn get_doc(&self, key: &ProjectionKey, id: &str) -> Result<Option<String>, StoreError> {
        let t = table(key)?;
        let doc = sqlx::query_scalar(AssertSqlSafe(format!("SELECT body FROM {t} WHERE id = ?")))
            .bind(id)
            .fetch_optional(self.reader())
            .await;
        match doc {
            Ok(doc) => Ok(doc),
            // A subscription has no document table: none of its ids names a document
            // (asked only when the read failed, so a projection's read costs nothing).
            Err(_) if !self.has_doc_table(key).await? => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn commit_page(&self, key: &ProjectionKey, page: &PageCommit) -> Result<(), StoreError> {
        let t = table(key)?;
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
        for chunk in puts.chunks(ID_CHUNK) {
            let mut qb: QueryBuilder<Sqlite> =
                QueryBuilder::new(format!("INSERT INTO {t} (id, body, updated_seq) "));
            qb.push_values(chunk, |mut row, (id, body)| {
                row.push_bind(*id).push_bind(*body).push_bind(position);
            });
            qb.push(
                " ON CONFLICT (id) DO UPDATE SET body = excluded.body, \
                 updated_seq = excluded.updated_seq",
            );
            qb.build().execute(&mut *tx).await?;
        }
        for chunk in deletes.chunks(ID_CHUNK) {
            let mut qb: QueryBuilder<Sqlite> =
                QueryBuilder::new(format!("DELETE FROM {t} WHERE id IN "));
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
        .bind(&key.name)
        .bind(key.version)
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
        .bind(&key.name)
        .bind(key.version)
        .execute(self.writer())
        .await?;
        Ok(())
    }
}

impl SqliteStore {
    /// Whether the version has a document table (a subscription has none).
    pub(super) async fn has_doc_table(&self, key: &ProjectionKey) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?)",
        )
        .bind(key.doc_table())
        .fetch_one(self.reader())
        .await?)
    }
}
