//! A version's dead letters: list them, and apply them again after a fix.

use serde::Deserialize;
use serde_json::json;

use super::version::{VersionCall, VersionReply};
use super::{ApiError, ApiQuery};
use crate::service::DEFAULT_DEAD_LETTER_PAGE;
use crate::store::Position;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    /// Only letters with a sequence after this one (the previous page's `next`).
    #[serde(default)]
    after: Position,
    /// Letters per page (default 100, at most 1,000).
    limit: Option<usize>,
}

/// `GET /projections/{name}/versions/{v}/dead-letters[?after=seq&limit=n]`: one page
/// of a version's dead letters, `next` the `after` of the next page.
pub(super) async fn list(call: VersionCall, ApiQuery(q): ApiQuery<ListQuery>) -> VersionReply {
    if q.limit == Some(0) {
        return Err(ApiError::bad_request("limit must be 1 or more"));
    }
    let limit = q.limit.unwrap_or(DEFAULT_DEAD_LETTER_PAGE);
    let page = call
        .run(async |svc, name, version| svc.dead_letters(name, version, q.after, limit).await)
        .await?;
    Ok(call.reply(json!({
        "dead_letters": page.dead_letters,
        "dead_letter_count": page.dead_letter_count,
        "next": page.next,
    })))
}

/// `POST /projections/{name}/versions/{v}/dead-letters/replay`: applies a version's
/// dead letters again (after a fix), answering how many went through.
pub(super) async fn replay(call: VersionCall) -> VersionReply {
    let done = call
        .run(async |svc, name, version| svc.replay_dead_letters(name, version).await)
        .await?;
    Ok(call.reply(json!({
        "replayed": done.replayed,
        "still_failing": done.failing,
        "missing": done.missing,
    })))
}
