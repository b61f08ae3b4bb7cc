//! Requests about one version of a component,
//! `/projections/{name}/versions/{version}[/...]`: who asks about which version, the
//! service call under the version's internal name, and the answer naming it.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::ApiError;
use super::auth::{Auth, for_caller, named};
use crate::service::{Refract, ServiceError};
use crate::teams::Caller;

/// The answer of a request about one version.
pub(super) type VersionReply = Result<Json<Value>, ApiError>;

/// A request about one version: the authenticated caller (a 401 first), then the
/// name as the caller knows it and the version from the path.
pub(super) struct VersionCall {
    svc: Arc<Refract>,
    caller: Caller,
    name: String,
    version: u32,
}

impl FromRequestParts<Arc<Refract>> for VersionCall {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, svc: &Arc<Refract>) -> Result<Self, Response> {
        let Auth(caller) = Auth::from_request_parts(parts, svc)
            .await
            .map_err(IntoResponse::into_response)?;
        let Path((name, version)) = Path::<(String, u32)>::from_request_parts(parts, svc)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self {
            svc: svc.clone(),
            caller,
            name,
            version,
        })
    }
}

impl VersionCall {
    /// Runs `op` on the version under its internal name (a dotted name from a team is
    /// not found), its error naming the caller's components as the caller knows them.
    pub async fn run<T>(
        &self,
        op: impl AsyncFnOnce(&Arc<Refract>, &str, u32) -> Result<T, ServiceError>,
    ) -> Result<T, ApiError> {
        let name = named(&self.caller, &self.name)?;
        self.serve(async |svc| op(svc, &name, self.version).await)
            .await
    }

    /// Runs `op` on the service before (or without) resolving the name, its error
    /// named for the caller as [`VersionCall::run`]'s is.
    pub async fn serve<T>(
        &self,
        op: impl AsyncFnOnce(&Arc<Refract>) -> Result<T, ServiceError>,
    ) -> Result<T, ApiError> {
        op(&self.svc).await.map_err(for_caller(&self.caller))
    }

    /// Runs `op` ([`VersionCall::run`]) and answers `fields` beside the name and version.
    pub async fn act(
        &self,
        op: impl AsyncFnOnce(&Arc<Refract>, &str, u32) -> Result<(), ServiceError>,
        fields: Value,
    ) -> VersionReply {
        self.run(op).await?;
        Ok(self.reply(fields))
    }

    /// The answer: the name (as the caller knows it) and the version, with `fields`.
    pub fn reply(&self, fields: Value) -> Json<Value> {
        let mut body = json!({"name": self.name, "version": self.version});
        if let (Some(body), Value::Object(fields)) = (body.as_object_mut(), fields) {
            body.extend(fields);
        }
        Json(body)
    }
}
