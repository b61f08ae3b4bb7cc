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
use axum::routing::{get, post};

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
        .route(
            "/projections/{name}/versions/{version}/promote",
            post(projections::promote),
        )
        .route(
            "/projections/{name}/versions/{version}/retire",
            post(projections::retire),
        )
        .route(
            "/projections/{name}/versions/{version}",
            axum::routing::delete(projections::retire),
        )
        .route(
            "/projections/{name}/versions/{version}/pause",
            post(projections::pause),
        )
        .route(
            "/projections/{name}/versions/{version}/resume",
            post(projections::resume),
        )
        .route(
            "/projections/{name}/versions/{version}/rewind",
            post(projections::rewind),
        )
        .route(
            "/projections/{name}/versions/{version}/rebuild",
            post(projections::rebuild),
        )
        .route(
            "/projections/{name}/versions/{version}/dead-letters",
            get(dead_letters::list),
        )
        .route(
            "/projections/{name}/versions/{version}/dead-letters/replay",
            post(dead_letters::replay),
        )
        .fallback(|| async { ApiError::not_found("no such route") })
        .with_state(service)
}
