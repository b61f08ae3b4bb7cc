//! Who is calling: the `Authorization: Bearer` token, checked against the teams.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::ApiError;
use crate::service::Refract;
use crate::teams::Caller;

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
    /// Refuses a team whose config does not allow `what`.
    pub fn require(&self, svc: &Refract, what: Permission) -> Result<(), ApiError> {
        let Caller::Team(team) = &self.0 else {
            return Ok(());
        };
        let t = svc.teams().team(team);
        let (allowed, action) = match what {
            Permission::Append => (t.append, "append events"),
            Permission::ReadEvents => (t.read_events, "read streams"),
        };
        if allowed {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "team {team} may not {action} (config: [teams.{team}])"
            )))
        }
    }
}

/// What a team may be allowed to do beyond its own components.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Permission {
    /// Append events.
    Append,
    /// Read streams.
    ReadEvents,
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
