//! API errors: one JSON shape, `{"error": "...", "code": "...", ...}`, and a status
//! code per kind. The `code` is for programs (it never changes with the wording);
//! the message is for people.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::daemon::DaemonError;
use crate::deploy::DeployError;
use crate::runtime::Fault;
use crate::service::ServiceError;
use crate::store::StoreError;

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: serde_json::Value,
}

impl ApiError {
    /// 400 with a message naming the problem.
    pub fn bad_request(msg: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, msg)
    }

    /// 404.
    pub fn not_found(msg: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, msg)
    }

    /// 404 for a component name that names nothing the caller may see.
    pub fn no_such_component(msg: impl std::fmt::Display) -> Self {
        Self::coded(StatusCode::NOT_FOUND, "projection_not_found", msg)
    }

    /// 401: no token, or one nobody has.
    pub fn unauthorized(msg: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, msg)
    }

    /// 403: the caller's team may not do this (never about another team's things:
    /// those are 404, so nothing is revealed).
    pub fn forbidden(msg: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::FORBIDDEN, msg)
    }

    /// The same error with `from` replaced by `to` in its message.
    pub(crate) fn replace_in_message(mut self, from: &str, to: &str) -> Self {
        if let Some(serde_json::Value::String(m)) = self.body.get_mut("error") {
            *m = m.replace(from, to);
        }
        self
    }

    /// The error's machine-readable code (`stream_not_found`, `conflict`, ...).
    pub fn code(&self) -> &str {
        self.body
            .get("code")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
    }

    /// An error with the default code of its status.
    fn new(status: StatusCode, msg: impl std::fmt::Display) -> Self {
        Self::coded(status, default_code(status), msg)
    }

    /// An error with its own code.
    fn coded(status: StatusCode, code: &str, msg: impl std::fmt::Display) -> Self {
        Self {
            status,
            body: json!({ "error": msg.to_string(), "code": code }),
        }
    }
}

/// The code of an error that has no more specific one.
fn default_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "invalid",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::CONFLICT => "conflict",
        StatusCode::UNPROCESSABLE_ENTITY => "guest_error",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        _ => "internal",
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Store(e) => e.into(),
            ServiceError::NotFound(_) => Self::not_found(e),
            ServiceError::StreamNotFound(_) => {
                Self::coded(StatusCode::NOT_FOUND, "stream_not_found", e)
            }
            ServiceError::ProjectionNotFound(_) => {
                Self::coded(StatusCode::NOT_FOUND, "projection_not_found", e)
            }
            ServiceError::DocumentNotFound(_) => {
                Self::coded(StatusCode::NOT_FOUND, "document_not_found", e)
            }
            ServiceError::CustomDocuments(_) => {
                Self::coded(StatusCode::CONFLICT, "custom_documents", e)
            }
            ServiceError::TooFarBehind(_) => {
                Self::coded(StatusCode::SERVICE_UNAVAILABLE, "too_far_behind", e)
            }
            ServiceError::Forbidden(_) => Self::coded(StatusCode::FORBIDDEN, "forbidden", e),
            ServiceError::Busy(_) => Self::coded(StatusCode::SERVICE_UNAVAILABLE, "busy", e),
            ServiceError::Behind {
                reached, paused, ..
            } => {
                let (status, code) = if paused {
                    (StatusCode::CONFLICT, "paused")
                } else {
                    (StatusCode::GATEWAY_TIMEOUT, "timeout")
                };
                Self {
                    status,
                    body: json!({"error": e.to_string(), "code": code, "position": reached}),
                }
            }
            ServiceError::RateLimited(ref r) => Self {
                status: StatusCode::TOO_MANY_REQUESTS,
                body: json!({
                    "error": e.to_string(),
                    "code": "rate_limited",
                    "retry_after_ms": r.retry_after_ms,
                }),
            },
            ServiceError::Lifecycle(_) => Self::new(StatusCode::CONFLICT, e),
            ServiceError::Daemon(DaemonError::Failed(_)) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, e)
            }
            ServiceError::Daemon(DaemonError::Forbidden(_)) => {
                Self::coded(StatusCode::FORBIDDEN, "forbidden", e)
            }
            ServiceError::Daemon(DaemonError::Unavailable(_)) => {
                Self::coded(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e)
            }
            ServiceError::Daemon(_) => Self::new(StatusCode::CONFLICT, e),
            // The projection's own code failed on this stream's events.
            ServiceError::Guest(ref re) if re.fault() == Fault::Guest => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, e)
            }
            ServiceError::Deploy(DeployError::Store(e)) => e.into(),
            // No instance for `describe` in time: the host's condition, try again.
            ServiceError::Deploy(DeployError::Component(ref re)) if re.is_busy() => {
                Self::coded(StatusCode::SERVICE_UNAVAILABLE, "busy", e)
            }
            ServiceError::Deploy(DeployError::Component(ref re)) if re.fault() == Fault::Guest => {
                Self::bad_request(e)
            }
            ServiceError::Deploy(DeployError::VersionTaken { .. }) => {
                Self::coded(StatusCode::CONFLICT, "version_taken", e)
            }
            _ => {
                tracing::error!("internal error: {e}");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, e)
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::Conflict { current, .. } => Self {
                status: StatusCode::CONFLICT,
                body: json!({
                    "error": e.to_string(),
                    "code": "conflict",
                    "current_version": current,
                }),
            },
            StoreError::KeyReused { .. } => {
                Self::coded(StatusCode::CONFLICT, "idempotency_key_reused", e)
            }
            StoreError::Invalid(_) => Self::bad_request(e),
            StoreError::TooLarge { index, size, max } => Self {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                body: json!({
                    "error": e.to_string(),
                    "index": index,
                    "size": size,
                    "max_event_bytes": max,
                }),
            },
            StoreError::NotFound(_) => Self::not_found(e),
            _ => {
                tracing::error!("store error: {e}");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, e)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}
