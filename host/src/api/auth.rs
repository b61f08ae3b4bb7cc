//! Who is calling: the `Authorization: Bearer` token, checked against the teams.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::ApiError;
use crate::service::Refract;
use crate::teams::{Caller, StreamAccess};

/// The authenticated caller of a request; a missing or unknown token is a 401.
pub(crate) struct Auth(pub Caller);

impl FromRequestParts<Arc<Refract>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, svc: &Arc<Refract>) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        svc.teams()
            .authenticate(header)
            .map(Auth)
            .map_err(ApiError::unauthorized)
    }
}

impl Auth {
    /// Refuses a stream the caller's team may not append to; answers the team's
    /// access (for the tenant check). The refusal names only the stream asked for.
    pub fn may_append(&self, svc: &Refract, stream: &str) -> Result<StreamAccess, ApiError> {
        let access = svc.teams().access_of(&self.0);
        if access.may_append(stream) {
            return Ok(access);
        }
        Err(self.refusal(
            &format!("append events to stream {stream:?}"),
            "append, append_streams",
        ))
    }

    /// Refuses a stream the caller's team may not read directly.
    pub fn may_read(&self, svc: &Refract, stream: &str) -> Result<(), ApiError> {
        if svc.teams().access_of(&self.0).may_read(stream) {
            return Ok(());
        }
        Err(self.refusal(
            &format!("read stream {stream:?}"),
            "read_events, read_streams",
        ))
    }

    fn refusal(&self, action: &str, fields: &str) -> ApiError {
        let team = self.0.team();
        ApiError::forbidden(format!(
            "team {team} may not {action} (config: [teams.{team}] {fields})"
        ))
    }
}

/// The internal name of what the caller calls `name`. A dotted name from a team is
/// not found (the same answer whether or not such a component exists).
pub(crate) fn named(caller: &Caller, name: &str) -> Result<String, ApiError> {
    caller.resolve(name).map_err(ApiError::no_such_component)
}

/// Turns a service error into the API's, naming the caller's components by the names
/// the caller knows (without its team's prefix).
pub(crate) fn for_caller(caller: &Caller) -> impl Fn(crate::service::ServiceError) -> ApiError {
    let prefix = match caller {
        Caller::Team(t) if t != crate::teams::DEFAULT_TEAM => Some(format!("{t}.")),
        _ => None,
    };
    move |e| {
        let err = ApiError::from(e);
        match &prefix {
            Some(p) => err.replace_in_message(p, ""),
            None => err,
        }
    }
}
