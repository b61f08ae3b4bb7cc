//! `POST /streams/{id}/events`, `GET /streams/{id}` (a page at a time) and the
//! write-model read `GET /streams/{id}/aggregate/{projection}`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::auth::{Auth, for_caller, named};
use super::{ApiError, ApiQuery};
use crate::service::{DEFAULT_STREAM_PAGE, Refract};
use crate::store::{
    AppendRequest, AppendResult, ExpectedVersion, InlineOutcome, NewEvent, RecordedEvent, StreamId,
};

/// The append request body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppendBody {
    #[serde(default)]
    expected_version: Option<u64>,
    #[serde(default)]
    idempotency_key: Option<String>,
    #[serde(default)]
    tenant: Option<String>,
    events: Vec<EventBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventBody {
    #[serde(rename = "type")]
    event_type: String,
    data: Box<RawValue>,
    #[serde(default)]
    metadata: Option<Box<RawValue>>,
}

/// Parses and checks an append body, naming the first problem.
fn parse_append(id: String, body: &[u8]) -> Result<AppendRequest, ApiError> {
    let stream = StreamId::new(id)?;
    let body: AppendBody = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid append request: {e}")))?;
    if body.events.is_empty() {
        return Err(ApiError::bad_request(
            "invalid append request: `events` is empty",
        ));
    }
    let mut events = Vec::with_capacity(body.events.len());
    for (i, e) in body.events.into_iter().enumerate() {
        let metadata = match e.metadata {
            Some(m) if !m.get().starts_with('{') => {
                return Err(ApiError::bad_request(format!(
                    "invalid append request: events[{i}].metadata must be a JSON object"
                )));
            }
            Some(m) => String::from(Box::<str>::from(m)),
            None => "{}".to_owned(),
        };
        events.push(NewEvent {
            event_type: e.event_type,
            data: String::from(Box::<str>::from(e.data)),
            metadata,
        });
    }
    Ok(AppendRequest {
        stream,
        expected: ExpectedVersion::from_option(body.expected_version),
        idempotency_key: body.idempotency_key,
        tenant: body.tenant,
        team: crate::teams::DEFAULT_TEAM.to_owned(),
        events,
    })
}

pub(super) async fn append(
    State(svc): State<Arc<Refract>>,
    auth: Auth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<AppendReply>, ApiError> {
    let stream = StreamId::new(id)?;
    let access = auth.may_append(&svc, stream.as_str())?;
    let mut req = parse_append(stream.as_str().to_owned(), &body)?;
    if let Some(tenant) = &req.tenant {
        access
            .check_tenant(tenant)
            .map_err(|e| ApiError::bad_request(format!("invalid append request: {e}")))?;
    }
    // Idempotency keys live in the caller's team's namespace.
    req.team = auth.0.team().to_owned();
    if let crate::teams::Caller::Team(team) = &auth.0 {
        svc.take_append_rate(team, req.events.len())?;
    }
    let (result, outcomes) = svc.append_projected(req).await?;
    let inline = outcomes
        .into_iter()
        .map(|o| InlineShown::new(o, &auth.0))
        .collect();
    Ok(Json(AppendReply { result, inline }))
}

/// An append's answer: where its events went, and what became of the appending
/// team's inline projections.
#[derive(Serialize)]
pub(super) struct AppendReply {
    #[serde(flatten)]
    result: AppendResult,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    inline: Vec<InlineShown>,
}

/// One inline projection in an append's answer.
#[derive(Serialize)]
struct InlineShown {
    projection: String,
    version: u32,
    /// Whether its documents hold the append's events now.
    projected: bool,
    /// Why not (its agent projects them later).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl InlineShown {
    fn new(o: InlineOutcome, caller: &crate::teams::Caller) -> Self {
        let (key, reason) = match o {
            InlineOutcome::Projected { key, .. } => (key, None),
            InlineOutcome::Deferred { key, reason } => (key, Some(reason)),
        };
        Self {
            projection: caller.sees(&key.name).unwrap_or(&key.name).to_owned(),
            version: key.version,
            projected: reason.is_none(),
            reason,
        }
    }
}

/// A stream as the API returns it.
#[derive(Serialize)]
pub(super) struct StreamBody {
    id: String,
    version: u64,
    events: Vec<EventOut>,
    /// The `from` of the next page; null at the end of the stream.
    next: Option<u64>,
}

#[derive(Serialize)]
struct EventOut {
    sequence: i64,
    stream_version: u64,
    #[serde(rename = "type")]
    event_type: String,
    data: Box<RawValue>,
    metadata: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    timestamp: String,
}

impl TryFrom<RecordedEvent> for EventOut {
    type Error = ApiError;

    fn try_from(e: RecordedEvent) -> Result<Self, ApiError> {
        let corrupt = |what: &str, err: serde_json::Error| {
            ApiError::from(crate::store::StoreError::Corrupt(format!(
                "event {} {what}: {err}",
                e.sequence
            )))
        };
        Ok(Self {
            sequence: e.sequence,
            stream_version: e.stream_version,
            data: RawValue::from_string(e.data.clone()).map_err(|err| corrupt("data", err))?,
            metadata: RawValue::from_string(e.metadata.clone())
                .map_err(|err| corrupt("metadata", err))?,
            timestamp: rfc3339(e.timestamp),
            event_type: e.event_type,
            tenant: e.tenant,
        })
    }
}

/// Formats microseconds since the epoch as RFC 3339.
fn rfc3339(micros: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AggregateQuery {
    version: Option<u32>,
    /// Wait until the store has this sequence (an append's `last_sequence`).
    after: Option<i64>,
    /// How long to wait for `after`, at most (default 5 s, at most 60 s).
    timeout_ms: Option<u64>,
}

/// `GET /streams/{id}/aggregate/{projection}[?version=n]`: the write-model read.
pub(super) async fn aggregate(
    State(svc): State<Arc<Refract>>,
    auth: Auth,
    Path((id, projection)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<AggregateQuery>,
) -> Result<Json<crate::service::Aggregate>, ApiError> {
    let stream = StreamId::new(id)?;
    auth.may_read(&svc, stream.as_str())?;
    let caller = auth.0;
    let projection = named(&caller, &projection)?;
    let wait = super::after::wait(q.after, q.timeout_ms)?;
    let out = svc
        .aggregate_after(&stream, &projection, q.version, wait)
        .await
        .map_err(for_caller(&caller))?;
    Ok(Json(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReadQuery {
    /// The first stream version to return (default 1).
    from: Option<u64>,
    /// Events per page (default 1,000; more than 10,000 is lowered to 10,000).
    limit: Option<usize>,
}

/// `GET /streams/{id}[?from=v&limit=n]`: one page of a stream, `next` the `from` of
/// the following page (null at the end).
pub(super) async fn read(
    State(svc): State<Arc<Refract>>,
    auth: Auth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ReadQuery>,
) -> Result<Json<StreamBody>, ApiError> {
    let stream = StreamId::new(id)?;
    auth.may_read(&svc, stream.as_str())?;
    if q.limit == Some(0) {
        return Err(ApiError::bad_request("limit must be 1 or more"));
    }
    let page = svc
        .read_stream_page(
            &stream,
            q.from.unwrap_or(1),
            q.limit.unwrap_or(DEFAULT_STREAM_PAGE),
        )
        .await?;
    let events = page
        .events
        .into_iter()
        .map(EventOut::try_from)
        .collect::<Result<_, _>>()?;
    Ok(Json(StreamBody {
        id: stream.as_str().to_owned(),
        version: page.version,
        events,
        next: page.next,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> String {
        match parse_append("s-1".into(), body.as_bytes()) {
            Ok(_) => panic!("accepted {body}"),
            Err(e) => format!("{e:?}"),
        }
    }

    #[test]
    fn bad_bodies_are_named() {
        assert!(err("{").contains("EOF"));
        assert!(err(r#"{"events": [], "x": 1}"#).contains("unknown field `x`"));
        assert!(err(r#"{"events": []}"#).contains("`events` is empty"));
        assert!(err(r#"{"events": [{"type": "A"}]}"#).contains("missing field `data`"));
        assert!(
            err(r#"{"events": [{"type": "A", "data": {}, "metadata": 3}]}"#)
                .contains("events[0].metadata")
        );
        assert!(
            err(r#"{"events": [{"type": "A", "data": {}, "foo": 1}]}"#)
                .contains("unknown field `foo`")
        );
    }

    #[test]
    fn good_body_keeps_json_text() {
        let req = parse_append(
            "s-1".into(),
            br#"{"expected_version": 0, "idempotency_key": "k", "events": [{"type": "A", "data": {"a": [1, 2]}}]}"#,
        )
        .expect("valid");
        assert_eq!(req.expected, ExpectedVersion::NoStream);
        assert_eq!(req.events[0].data, r#"{"a": [1, 2]}"#);
        assert_eq!(req.events[0].metadata, "{}");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
