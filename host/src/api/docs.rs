//! Documents by id: `GET /projections/{name}/docs/{id}` and, for a named collection,
//! `/projections/{name}/docs/{collection}/{id}`; read as stored, consistent, or after
//! a sequence.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::{Auth, for_caller, named};
use super::{ApiError, ApiQuery};
use crate::identity::doc_key::{check_collection, doc_key};
use crate::identity::{MAX_STREAM_ID_LEN, check_text};
use crate::service::Refract;
use crate::teams::Caller;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DocQuery {
    version: Option<u32>,
    /// Apply every event committed since the version's position (through the guest).
    #[serde(default)]
    consistent: bool,
    /// Wait until the version has projected this sequence (an append's
    /// `last_sequence`) before reading.
    after: Option<i64>,
    /// How long to wait for `after`, at most (default 5 s, at most 60 s).
    timeout_ms: Option<u64>,
}

/// Header of a consistent read: the sequence the document reflects every event up to.
const POSITION_HEADER: &str = "refract-position";

/// `GET /projections/{name}/docs/{id}[?version=n][&consistent=true]`.
pub(super) async fn doc(
    State(svc): State<Arc<Refract>>,
    Auth(caller): Auth,
    Path((name, id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<DocQuery>,
) -> Result<Response, ApiError> {
    doc_by_key(&svc, &caller, &name, doc_key(None, doc_id(&id)?), q).await
}

/// `GET /projections/{name}/docs/{collection}/{id}`: a document of a named
/// collection, with the same options.
pub(super) async fn collection_doc(
    State(svc): State<Arc<Refract>>,
    Auth(caller): Auth,
    Path((name, collection, id)): Path<(String, String, String)>,
    ApiQuery(q): ApiQuery<DocQuery>,
) -> Result<Response, ApiError> {
    check_collection(&collection).map_err(|e| ApiError::bad_request(e.0))?;
    let key = doc_key(Some(&collection), doc_id(&id)?);
    doc_by_key(&svc, &caller, &name, key, q).await
}

/// A document id from a path: no control characters, so it can never spell the key
/// of another collection's document.
fn doc_id(id: &str) -> Result<&str, ApiError> {
    check_text("document id", id, MAX_STREAM_ID_LEN).map_err(|e| ApiError::bad_request(e.0))?;
    Ok(id)
}

async fn doc_by_key(
    svc: &Arc<Refract>,
    caller: &Caller,
    name: &str,
    id: String,
    q: DocQuery,
) -> Result<Response, ApiError> {
    let name = named(caller, name)?;
    let json = [(header::CONTENT_TYPE, "application/json")];
    let wait = super::after::wait(q.after, q.timeout_ms)?;
    if let Some((after, timeout)) = wait {
        if q.consistent {
            return Err(ApiError::bad_request(
                "after= and consistent=true: a consistent read already includes every \
                 committed event; use one of them",
            ));
        }
        let (body, reached) = svc
            .get_doc_after(&name, q.version, &id, after, timeout)
            .await
            .map_err(for_caller(caller))?;
        let mut resp = (json, body).into_response();
        resp.headers_mut().insert(
            header::HeaderName::from_static(POSITION_HEADER),
            header::HeaderValue::from(reached),
        );
        return Ok(resp);
    }
    if q.consistent {
        let doc = svc
            .get_doc_consistent(&name, q.version, &id)
            .await
            .map_err(for_caller(caller))?;
        let mut resp = (json, doc.body).into_response();
        resp.headers_mut().insert(
            header::HeaderName::from_static(POSITION_HEADER),
            header::HeaderValue::from(doc.position),
        );
        return Ok(resp);
    }
    let body = svc
        .get_doc(&name, q.version, &id)
        .await
        .map_err(for_caller(caller))?;
    Ok((json, body).into_response())
}
