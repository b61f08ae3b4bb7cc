//! A version's dead letters: list them, and apply them again after a fix.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};

use super::ApiError;
use super::auth::{Auth, for_caller};
use crate::service::Refract;

pub(super) async fn list(
    State(svc): State<Arc<Refract>>,
    Auth(caller): Auth,
    Path((name, version)): Path<(String, u32)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let letters = svc
        .dead_letters(&caller.qualify(&name), version)
        .await
        .map_err(for_caller(&caller))?;
    Ok(Json(serde_json::json!({
        "name": name,
        "version": version,
        "dead_letters": letters,
    })))
}

pub(super) async fn replay(
    State(svc): State<Arc<Refract>>,
    Auth(caller): Auth,
    Path((name, version)): Path<(String, u32)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let done = svc
        .replay_dead_letters(&caller.qualify(&name), version)
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
