//! Components and projections: deploy, status, documents.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::Deserialize;
use serde_json::json;

use super::auth::{Auth, for_caller};
use super::version::{VersionCall, VersionReply};
use super::{ApiError, ApiQuery};
use crate::deploy::Deployed;
use crate::service::{ProjectionStatus, Refract};
use crate::teams::Caller;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeployQuery {
    #[serde(default)]
    auto_promote: bool,
    /// Replace the code of the deployed version of the same name and version,
    /// keeping its documents and progress (a hotfix).
    #[serde(default)]
    replace: bool,
}

pub(super) async fn deploy(
    State(svc): State<Arc<Refract>>,
    Auth(caller): Auth,
    ApiQuery(q): ApiQuery<DeployQuery>,
    body: Bytes,
) -> Result<Json<Deployed>, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "empty upload: send the component's .wasm bytes",
        ));
    }
    let deployed = if q.replace {
        svc.hotfix(body.to_vec(), caller.team()).await
    } else {
        svc.deploy(body.to_vec(), q.auto_promote, caller.team())
            .await
    };
    let mut out = deployed.map_err(for_caller(&caller))?;
    out.name = caller.sees(&out.name).unwrap_or(&out.name).to_owned();
    Ok(Json(out))
}

/// Every version the caller may see, under the names the caller knows.
pub(super) async fn list(
    State(svc): State<Arc<Refract>>,
    Auth(caller): Auth,
) -> Result<Json<Vec<ProjectionStatus>>, ApiError> {
    // A team's listing reads only its own records: it costs the same beside 2,000
    // components of other teams.
    let team = match &caller {
        Caller::Admin => None,
        Caller::Team(t) => Some(t.as_str()),
    };
    let all = svc
        .projections(team, &|name| caller.sees(name).is_some())
        .await?;
    let mine = all
        .into_iter()
        .filter_map(|mut p| {
            let name = caller.sees(&p.name)?.to_owned();
            p.name = name;
            Some(p)
        })
        .collect();
    Ok(Json(mine))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PromoteQuery {
    #[serde(default)]
    force: bool,
}

/// `POST /projections/{name}/versions/{v}/promote[?force=true]`: makes it live.
pub(super) async fn promote(
    call: VersionCall,
    ApiQuery(q): ApiQuery<PromoteQuery>,
) -> VersionReply {
    let op =
        async |svc: &Arc<Refract>, name: &str, version| svc.promote(name, version, q.force).await;
    call.act(op, json!({"state": "live"})).await
}

/// `POST .../retire` (or `DELETE /projections/{name}/versions/{v}`).
pub(super) async fn retire(call: VersionCall) -> VersionReply {
    let op = async |svc: &Arc<Refract>, name: &str, version| svc.retire(name, version).await;
    call.act(op, json!({"state": "retired"})).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RewindQuery {
    /// Replay the events after this sequence (default 0: from the beginning).
    to: Option<i64>,
    /// Replay from the first event recorded at or after this time (RFC 3339).
    at: Option<String>,
    /// `replay`: perform the replayed events' emits and sends again (by default they
    /// are held up to the furthest position the version ever committed).
    effects: Option<String>,
}

/// `POST .../rewind[?to=seq|at=time][&effects=replay]`: a subscription's replay.
pub(super) async fn rewind(call: VersionCall, ApiQuery(q): ApiQuery<RewindQuery>) -> VersionReply {
    let position = match (q.to, q.at) {
        (Some(_), Some(_)) => return Err(ApiError::bad_request("give either to or at, not both")),
        (to, None) => to.unwrap_or(0),
        (None, Some(at)) => {
            let t =
                time::OffsetDateTime::parse(&at, &time::format_description::well_known::Rfc3339)
                    .map_err(|e| {
                        ApiError::bad_request(format!("at={at:?} is not an RFC 3339 time: {e}"))
                    })?;
            let micros = i64::try_from(t.unix_timestamp_nanos() / 1000)
                .map_err(|_| ApiError::bad_request(format!("at={at:?} is out of range")))?;
            call.serve(async |svc| svc.position_at_time(micros).await)
                .await?
        }
    };
    let replay_effects = match q.effects.as_deref() {
        None | Some("held") => false,
        Some("replay") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "effects={other:?}: give effects=replay (or effects=held, the default)"
            )));
        }
    };
    let position = call
        .run(async |svc, name, version| svc.rewind(name, version, position, replay_effects).await)
        .await?;
    Ok(call.reply(json!({"position": position})))
}

/// `POST .../rebuild`: from the first event, with the same code; with
/// `?stream=<id>`, only the documents that stream's events touch, in place.
pub(super) async fn rebuild(
    call: VersionCall,
    ApiQuery(query): ApiQuery<RebuildQuery>,
) -> VersionReply {
    if let Some(stream) = query.stream {
        let op = async |svc: &Arc<Refract>, name: &str, version| {
            svc.rebuild_stream(name, version, &stream).await
        };
        let done = call.run(op).await?;
        return Ok(call.reply(json!({"stream": stream, "rebuilt": done})));
    }
    let op = async |svc: &Arc<Refract>, name: &str, version| svc.rebuild(name, version).await;
    call.act(op, json!({"position": 0})).await
}

/// `rebuild`'s query: `?stream=<id>` rebuilds only the documents that stream's
/// events touch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RebuildQuery {
    stream: Option<String>,
}

/// `POST /projections/{name}/versions/{v}/pause`: the brake, for any version.
pub(super) async fn pause(call: VersionCall) -> VersionReply {
    let op = async |svc: &Arc<Refract>, name: &str, version| svc.pause(name, version).await;
    call.act(op, json!({"status": "paused"})).await
}

/// `POST /projections/{name}/versions/{v}/resume`: runs it again from its progress.
pub(super) async fn resume(call: VersionCall) -> VersionReply {
    let op = async |svc: &Arc<Refract>, name: &str, version| svc.resume(name, version).await;
    call.act(op, json!({"status": "running"})).await
}
