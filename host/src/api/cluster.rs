//! `GET /cluster`: the nodes sharing this daemon's store, their heartbeats and the
//! agents each one runs (a team sees only its own agents).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use super::ApiError;
use super::auth::Auth;
use crate::service::{ClusterView, Refract};
use crate::teams::Caller;

/// The cluster as the store knows it; 404 on a store no other node can share.
pub(super) async fn view(
    State(svc): State<Arc<Refract>>,
    Auth(caller): Auth,
) -> Result<Json<ClusterView>, ApiError> {
    let team = match &caller {
        Caller::Admin => None,
        Caller::Team(t) => Some(t.as_str()),
    };
    match svc.cluster_view(team).await? {
        Some(view) => Ok(Json(view)),
        None => Err(ApiError::not_found(
            "no cluster: this daemon runs alone on its store (SQLite); several nodes share \
             a PostgreSQL store",
        )),
    }
}
