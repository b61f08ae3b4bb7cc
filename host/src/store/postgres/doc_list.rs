//! PostgreSQL: listing a version's documents ([`crate::store::doc_list`]). Ids
//! compare as bytes (`documents.id` is `COLLATE "C"`), as on SQLite.

use futures_util::TryStreamExt;
use sqlx::{AssertSqlSafe, Row};

use super::PgStore;
use super::convert::BindKey;
use super::docs::SET_OF;
use super::reads::SNAPSHOT;
use crate::store::{DocList, DocQuery, ProjectionKey, StoreError};

impl PgStore {
    /// One page of `key`'s documents (see [`crate::store::DocumentStore::list_docs`]).
    pub(super) async fn list_docs_in(
        &self,
        key: &ProjectionKey,
        q: &DocQuery,
    ) -> Result<DocList, StoreError> {
        let after = q.after.as_deref().unwrap_or("");
        // No id holds a NUL here (nothing stored does): nothing to list after one.
        let nul_value = q.filter.as_ref().is_some_and(|f| f.value().contains('\0'));
        if after.contains('\0') || q.prefix.contains('\0') || nul_value {
            return Ok(DocList::default());
        }
        let mut tx = self.pool.begin_with(SNAPSHOT).await?;
        let rows: Vec<(String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT id, size FROM documents WHERE set_id = {SET_OF} AND id > $3 AND id >= $4 \
             ORDER BY id LIMIT $5"
        )))
        .bind_key(key)
        .bind(after)
        .bind(&q.prefix)
        .bind(i64::try_from(q.budget.scan_docs.saturating_add(1)).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await?;
        let range = q.scan_range(&rows);
        let Some(last) = range.last.clone() else {
            return Ok(q.collector(range).finish());
        };
        // `->>` gives a string as is, a number or a boolean as its JSON text, NULL
        // for null and for a missing field (never a match).
        let filter = match &q.filter {
            Some(_) => " AND body->>$6 = $7",
            None => "",
        };
        let sql = format!(
            "SELECT id, body::text FROM documents WHERE set_id = {SET_OF} AND id > $3 \
             AND id >= $4 AND id <= $5{filter} ORDER BY id"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind_key(key)
            .bind(after)
            .bind(&q.prefix)
            .bind(last);
        if let Some(f) = &q.filter {
            query = query.bind(f.field().to_owned()).bind(f.value().to_owned());
        }
        let mut page = q.collector(range);
        {
            let mut matches = query.fetch(&mut *tx);
            while let Some(row) = matches.try_next().await? {
                if !page.take(row.try_get(0)?, row.try_get(1)?) {
                    break;
                }
            }
        }
        tx.commit().await?;
        Ok(page.finish())
    }
}
