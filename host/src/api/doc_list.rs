//! `GET /projections/{name}/docs`: a version's documents, a keyset page at a time.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;

use super::auth::{Auth, for_caller, named};
use super::{ApiError, ApiQuery};
use crate::identity::doc_key::check_collection;
use crate::service::{DocPage, Refract};
use crate::store::doc_list::{DEFAULT_DOC_LIST, MAX_DOC_LIST};
use crate::store::{DocQuery, FieldIs, ListBudget};

/// Longest `prefix` or `after` accepted (no id is longer).
const MAX_ID_ARG: usize = 4_096;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    version: Option<u32>,
    /// A named collection to list instead of the default one.
    collection: Option<String>,
    /// Only ids starting with this.
    prefix: Option<String>,
    /// Only ids after this one: the `next` of the page before.
    after: Option<String>,
    /// Documents per page (default 100; more than 1,000 is lowered to 1,000).
    limit: Option<usize>,
    /// `field:value`: only documents whose top-level `field` holds `value`.
    #[serde(rename = "where")]
    filter: Option<String>,
    /// Read your writes: wait until the version has projected this sequence.
    after_sequence: Option<i64>,
    /// How long to wait for `after_sequence`, at most (default 5 s, at most 60 s).
    timeout_ms: Option<u64>,
}

/// `GET /projections/{name}/docs[?collection=c][&prefix=p][&after=id][&limit=n]
/// [&where=field:value][&version=n][&after_sequence=SEQ[&timeout_ms=n]]`.
pub(super) async fn list(
    State(svc): State<Arc<Refract>>,
    Auth(caller): Auth,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<DocPage>, ApiError> {
    let name = named(&caller, &name)?;
    let wait = super::after::wait(q.after_sequence, q.timeout_ms)?;
    if let Some(c) = &q.collection {
        check_collection(c).map_err(|e| ApiError::bad_request(e.0))?;
    }
    let query = DocQuery {
        prefix: id_arg("prefix", q.prefix)?.unwrap_or_default(),
        after: id_arg("after", q.after)?,
        limit: match q.limit {
            Some(0) => return Err(ApiError::bad_request("limit must be 1 or more")),
            Some(n) => n.min(MAX_DOC_LIST),
            None => DEFAULT_DOC_LIST,
        },
        filter: q.filter.as_deref().map(field_is).transpose()?,
        budget: ListBudget::default(),
    };
    let page = svc
        .list_docs(&name, q.version, q.collection.as_deref(), &query, wait)
        .await
        .map_err(for_caller(&caller))?;
    Ok(Json(page))
}

/// An id argument: no control character (no id holds one, and one could reach
/// into another collection's range), at most [`MAX_ID_ARG`] bytes.
fn id_arg(what: &str, v: Option<String>) -> Result<Option<String>, ApiError> {
    match v {
        Some(s) if s.chars().any(char::is_control) => Err(ApiError::bad_request(format!(
            "{what} must not contain a control character"
        ))),
        Some(s) if s.len() > MAX_ID_ARG => Err(ApiError::bad_request(format!(
            "{what} is {} bytes; at most {MAX_ID_ARG}",
            s.len()
        ))),
        v => Ok(v),
    }
}

/// `where=field:value`.
fn field_is(w: &str) -> Result<FieldIs, ApiError> {
    let Some((field, value)) = w.split_once(':') else {
        return Err(ApiError::bad_request(format!(
            "where must be field:value (a top-level field and the text it holds), not {w:?}"
        )));
    };
    if value.contains('\0') || value.len() > MAX_ID_ARG {
        return Err(ApiError::bad_request(format!(
            "where: the value must hold no NUL character and be at most {MAX_ID_ARG} bytes"
        )));
    }
    Ok(FieldIs::new(field, value)?)
}
