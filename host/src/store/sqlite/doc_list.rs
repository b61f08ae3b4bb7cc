//! SQLite: listing a version's documents ([`crate::store::doc_list`]).

use sqlx::AssertSqlSafe;

use super::SqliteStore;
use super::convert::BindKey;
use super::doc_sets::SET_OF;
use crate::store::{DocList, DocQuery, ProjectionKey, StoreError};

/// A filter (see [`crate::store::FieldIs`]): binds the path (three times), the
/// string, the number or NULL, the boolean or NULL. A document holding `\u0000`
/// never matches, as on PostgreSQL (which cannot extract from it).
const FIELD_IS: &str = "(instr(body, '\\u0000') = 0 AND \
     ((json_type(body, ?) = 'text' AND json_extract(body, ?) = ?) \
     OR (json_type(body, ?) IN ('integer', 'real') AND json_extract(body, ?) = CAST(? AS REAL)) \
     OR json_type(body, ?) = ?))";

impl SqliteStore {
    /// One page of `key`'s documents (see [`crate::store::DocumentStore::list_docs`]).
    pub(super) async fn list_docs_in(
        &self,
        key: &ProjectionKey,
        q: &DocQuery,
    ) -> Result<DocList, StoreError> {
        let after = q.after.as_deref().unwrap_or("");
        // Past the prefix's range: an id no listing of it can reach.
        let end = q.prefix_end();
        let below_end = if end.is_some() { " AND id < ?" } else { "" };
        let mut tx = self.reader().begin().await?;
        let mut ids = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT id, size FROM documents WHERE set_id = {SET_OF} AND id > ? AND id >= ?\
             {below_end} ORDER BY id LIMIT ?"
        )))
        .bind_key(key)
        .bind(after)
        .bind(&q.prefix);
        if let Some(end) = &end {
            ids = ids.bind(end.clone());
        }
        let rows: Vec<(String, i64)> = ids
            .bind(i64::try_from(q.scan_docs().saturating_add(1)).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await?;
        let range = q.scan_range(&rows);
        let Some(last) = range.last.clone() else {
            return Ok(q.collector(range).finish());
        };
        let filter = match &q.filter {
            Some(_) => format!(" AND {FIELD_IS}"),
            None => String::new(),
        };
        let sql = format!(
            "SELECT id, body FROM documents WHERE set_id = {SET_OF} AND id > ? AND id >= ? \
             AND id <= ?{filter} ORDER BY id LIMIT ?"
        );
        let mut query = sqlx::query_as::<_, (String, String)>(AssertSqlSafe(sql))
            .bind_key(key)
            .bind(after)
            .bind(&q.prefix)
            .bind(last);
        if let Some(f) = &q.filter {
            let path = f.json_path();
            query = query
                .bind(path.clone())
                .bind(path.clone())
                .bind(f.value().to_owned())
                .bind(path.clone())
                .bind(path.clone())
                .bind(f.as_number())
                .bind(path)
                .bind(f.as_boolean());
        }
        let mut page = q.collector(range);
        page.fill(query.bind(q.match_rows()).fetch(&mut *tx))
            .await?;
        tx.commit().await?;
        Ok(page.finish())
    }
}
