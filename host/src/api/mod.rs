//! The HTTP API (axum, JSON): a thin layer over [`Refract`].

mod after;
mod auth;
mod cluster;
mod dead_letters;
mod doc_list;
mod docs;
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

/// The path of a version (no action) or of one of its actions.
macro_rules! version_path {
    () => {
        "/projections/{name}/versions/{version}"
    };
    ($action:literal) => {
        concat!("/projections/{name}/versions/{version}/", $action)
    };
}

/// Every route the API serves, with its handlers. The router is built from this
/// table alone, so [`route_paths`] is every route there is.
fn routes() -> Vec<(&'static str, MethodRouter<Arc<Refract>>)> {
    let health = || async { axum::Json(serde_json::json!({"status": "ok"})) };
    let append = post(streams::append).layer(DefaultBodyLimit::max(MAX_APPEND_BYTES));
    let deploy = post(projections::deploy).layer(DefaultBodyLimit::max(MAX_COMPONENT_BYTES));
    vec![
        ("/healthz", get(health)),
        ("/streams/{id}/events", append),
        ("/streams/{id}", get(streams::read)),
        (
            "/streams/{id}/aggregate/{projection}",
            get(streams::aggregate),
        ),
        ("/components", deploy),
        ("/projections", get(projections::list)),
        ("/cluster", get(cluster::view)),
        ("/projections/{name}/docs", get(doc_list::list)),
        ("/projections/{name}/docs/{id}", get(docs::doc)),
        (
            "/projections/{name}/docs/{collection}/{id}",
            get(docs::collection_doc),
        ),
        (version_path!("promote"), post(projections::promote)),
        (version_path!("retire"), post(projections::retire)),
        (version_path!(), delete(projections::retire)),
        (version_path!("pause"), post(projections::pause)),
        (version_path!("resume"), post(projections::resume)),
        (version_path!("rewind"), post(projections::rewind)),
        (version_path!("rebuild"), post(projections::rebuild)),
        (version_path!("dead-letters"), get(dead_letters::list)),
        (
            version_path!("dead-letters/replay"),
            post(dead_letters::replay),
        ),
    ]
}

/// The path template of every route the API serves (what a test of every route
/// walks).
pub fn route_paths() -> Vec<&'static str> {
    routes().into_iter().map(|(path, _)| path).collect()
}

/// The API's routes over one service.
pub fn router(service: Arc<Refract>) -> Router {
    routes()
        .into_iter()
        .fold(Router::new(), |router, (path, handlers)| {
            router.route(path, handlers)
        })
        .fallback(|| async { ApiError::not_found("no such route") })
        .with_state(service)
}
