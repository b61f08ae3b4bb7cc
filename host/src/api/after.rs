//! `?after=<sequence>[&timeout_ms=n]`: the read waits until the version (or the
//! store) has got there. Checked here, waited for by the service.

use std::time::Duration;

use super::ApiError;
use crate::service::{DEFAULT_AFTER_TIMEOUT, MAX_AFTER_TIMEOUT};
use crate::store::Position;

/// What to wait for before reading, if anything: a sequence and how long at most.
pub(super) fn wait(
    after: Option<i64>,
    timeout_ms: Option<u64>,
) -> Result<Option<(Position, Duration)>, ApiError> {
    let Some(after) = after else {
        return match timeout_ms {
            Some(_) => Err(ApiError::bad_request(
                "timeout_ms applies only with after=<sequence>",
            )),
            None => Ok(None),
        };
    };
    if after < 0 {
        return Err(ApiError::bad_request(format!(
            "after must be a sequence (0 or more), not {after}"
        )));
    }
    let most = MAX_AFTER_TIMEOUT.as_millis();
    let timeout = match timeout_ms {
        Some(ms) if u128::from(ms) > most => {
            return Err(ApiError::bad_request(format!(
                "timeout_ms must be at most {most}, not {ms}"
            )));
        }
        Some(ms) => Duration::from_millis(ms),
        None => DEFAULT_AFTER_TIMEOUT,
    };
    Ok(Some((after, timeout)))
}
