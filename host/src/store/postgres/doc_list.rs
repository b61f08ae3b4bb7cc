//! PostgreSQL: listing a version's documents ([`crate::store::doc_list`]). Ids
//! compare as bytes (`documents.id` is `COLLATE "C"`), as on SQLite.

use sqlx::AssertSqlSafe;

use super::PgStore;
use super::convert::BindKey;
use super::docs::SET_OF;
use super::reads::SNAPSHOT;
use crate::store::{DocList, DocQuery, ProjectionKey, StoreError};

/// A filter (see [`crate::store::FieldIs`]) on `$7` (the field; the number cast
/// only for a number, by `CASE`): the string as JSON text `$8` (compared as
/// written), the number `$9` or NULL, the boolean `$10` or NULL. A document
/// holding `\u0000` anywhere never matches: PostgreSQL fails to extract any field
/// of such a `json` value, and one document must not break its set's listings.
const FIELD_IS: &str = "(CASE WHEN strpos(body::text, '\\u0000') > 0 THEN false ELSE \
     ((json_typeof(body->$7) = 'string' AND (body->$7)::text = $8) \
     OR (CASE WHEN json_typeof(body->$7) = 'number' \
              THEN (body->$7)::text::numeric = $9::numeric ELSE false END) \
     OR (json_typeof(body->$7) = 'boolean' AND (body->$7)::text = $10)) END)";

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
        // Past the prefix's range (NULL: no end).
        let end = q.prefix_end();
        let mut tx = self.pool.begin_with(SNAPSHOT).await?;
        let rows: Vec<(String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT id, size FROM documents WHERE set_id = {SET_OF} AND id > $3 AND id >= $4 \
             AND ($5::text IS NULL OR id < $5) ORDER BY id LIMIT $6"
        )))
        .bind_key(key)
        .bind(after)
        .bind(&q.prefix)
        .bind(end)
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
            "SELECT id, body::text FROM documents WHERE set_id = {SET_OF} AND id > $3 \
             AND id >= $4 AND id <= $5{filter} ORDER BY id LIMIT $6"
        );
        let mut query = sqlx::query_as::<_, (String, String)>(AssertSqlSafe(sql))
            .bind_key(key)
            .bind(after)
            .bind(&q.prefix)
            .bind(last)
            .bind(q.match_rows());
        if let Some(f) = &q.filter {
            query = query
                .bind(f.field().to_owned())
                .bind(f.as_json_string())
                .bind(f.as_number())
                .bind(f.as_boolean());
        }
        let mut page = q.collector(range);
        page.fill(query.fetch(&mut *tx)).await?;
        tx.commit().await?;
        Ok(page.finish())
    }
}
