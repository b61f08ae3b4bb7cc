//! SQLite: listing a version's documents ([`crate::store::doc_list`]).

use futures_util::TryStreamExt;
use sqlx::{AssertSqlSafe, Row};

use super::SqliteStore;
use super::convert::BindKey;
use super::doc_sets::SET_OF;
use crate::store::{DocList, DocQuery, ProjectionKey, StoreError};

/// The text a filter compares: a string as is, `true`/`false`, a number as SQLite
/// prints it; null and a missing field give NULL (never a match).
const FIELD_TEXT: &str = "(CASE json_type(body, ?) WHEN 'true' THEN 'true' \
     WHEN 'false' THEN 'false' ELSE CAST(json_extract(body, ?) AS TEXT) END)";

impl SqliteStore {
    /// One page of `key`'s documents (see [`crate::store::DocumentStore::list_docs`]).
    pub(super) async fn list_docs_in(
        &self,
        key: &ProjectionKey,
        q: &DocQuery,
    ) -> Result<DocList, StoreError> {
        let after = q.after.as_deref().unwrap_or("");
        let mut tx = self.reader().begin().await?;
        let rows: Vec<(String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT id, size FROM documents WHERE set_id = {SET_OF} AND id > ? AND id >= ? \
             ORDER BY id LIMIT ?"
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
        let filter = match &q.filter {
            Some(_) => format!(" AND {FIELD_TEXT} = ?"),
            None => String::new(),
        };
        let sql = format!(
            "SELECT id, body FROM documents WHERE set_id = {SET_OF} AND id > ? AND id >= ? \
             AND id <= ?{filter} ORDER BY id"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind_key(key)
            .bind(after)
            .bind(&q.prefix)
            .bind(last);
        if let Some(f) = &q.filter {
            let path = f.json_path();
            query = query
                .bind(path.clone())
                .bind(path)
                .bind(f.value().to_owned());
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
