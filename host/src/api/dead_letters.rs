//! A version's dead letters: list them, and apply them again after a fix.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};

use serde::Deserialize;

use super::auth::{Auth, for_caller, named};
use super::{ApiError, ApiQuery};
use crate::service::{DEFAULT_DEAD_LETTER_PAGE, Refract};
use crate::store::Position;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    /// Only letters with a sequence after this one (the previous page's `next`).
    #[serde(default)]
    after: Position,
    /// Letters per page (default 100, at most 1,000).
    limit: Option<usize>,
}

/// `GET /projections/{name}/versions/{v}/dead-letters[?after=seq&limit=n]`: one page
/// of a version's dead letters, `next` the `after` of the next page.
pub(super) async fn list(
    State(svc): State<Arc<Refract>>,
    Auth(caller): Auth,
    Path((name, version)): Path<(String, u32)>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if q.limit == Some(0) {
        return Err(ApiError::bad_request("limit must be 1 or more"));
    }
    let limit = q.limit.unwrap_or(DEFAULT_DEAD_LETTER_PAGE);
    let page = svc
        .dead_letters(&named(&caller, &name)?, version, q.after, limit)
        .await
        .map_err(for_caller(&caller))?;
    Ok(Json(serde_json::json!({
        "name": name,
        "version": version,
        "dead_letters": page.dead_letters,
        "dead_letter_count": page.dead_letter_count,
        "next": page.next,
    })))
}

pub(super) async fn replay(
    State(svc): State<Arc<Refract>>,
    Auth(caller): Auth,
    Path((name, version)): Path<(String, u32)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let done = svc
        .replay_dead_letters(&named(&caller, &name)?, version)
        .await
        .map_err(for_caller(&caller))?;
    Ok(Json(serde_json::json!({
        "name": name,
        "version": version,
        "replayed": done.replayed,
        "still_failing": done.failing,
        "missing": done.missing,
    })))
}
