//! The HTTP API (axum, JSON): a thin layer over [`Refract`].

mod auth;
mod dead_letters;
mod error;
mod projections;
mod query;
mod streams;
mod version;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{MethodRouter, delete, get, post};

pub use error::ApiError;
use query::ApiQuery;

use crate::service::Refract;

/// Largest component upload accepted.
pub const MAX_COMPONENT_BYTES: usize = 64 << 20;
/// Largest append body accepted.
pub const MAX_APPEND_BYTES: usize = 32 << 20;

/// The API's routes over one service.
pub fn router(service: Arc<Refract>) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/streams/{id}/events",
            post(streams::append).layer(DefaultBodyLimit::max(MAX_APPEND_BYTES)),
        )
        .route("/streams/{id}", get(streams::read))
        .route(
            "/streams/{id}/aggregate/{projection}",
            get(streams::aggregate),
        )
        .route(
            "/components",
            post(projections::deploy).layer(DefaultBodyLimit::max(MAX_COMPONENT_BYTES)),
        )
        .route("/projections", get(projections::list))
        .route("/projections/{name}/docs/{id}", get(projections::doc))
        .merge(version_routes())
        .fallback(|| async { ApiError::not_found("no such route") })
        .with_state(service)
}

/// What may be done to one version of a component: each path below
/// `/projections/{name}/versions/{version}` with its handler.
fn version_routes() -> Router<Arc<Refract>> {
    let actions: [(&str, MethodRouter<Arc<Refract>>); 9] = [
        ("", delete(projections::retire)),
        ("/promote", post(projections::promote)),
        ("/retire", post(projections::retire)),
        ("/pause", post(projections::pause)),
        ("/resume", post(projections::resume)),
        ("/rewind", post(projections::rewind)),
        ("/rebuild", post(projections::rebuild)),
        ("/dead-letters", get(dead_letters::list)),
        ("/dead-letters/replay", post(dead_letters::replay)),
    ];
    actions
        .into_iter()
        .fold(Router::new(), |router, (path, handler)| {
            router.route(
                &format!("/projections/{{name}}/versions/{{version}}{path}"),
                handler,
            )
        })
}
