//! The checks every backend makes of an append before it touches the database: the
//! same refusals, with the same messages, on SQLite and PostgreSQL.

use crate::identity::check_text;
use crate::store::{AppendRequest, MAX_EVENTS_PER_APPEND, MAX_IDEMPOTENCY_KEY_LEN, StoreError};

/// Refuses an empty or oversized append, a bad idempotency key, an event over
/// `max_event_bytes` or with a bad type, naming the event.
pub(crate) fn validate(req: &AppendRequest, max_event_bytes: usize) -> Result<(), StoreError> {
    if req.events.is_empty() {
        return Err(StoreError::Invalid("no events to append".into()));
    }
    if req.events.len() > MAX_EVENTS_PER_APPEND {
        return Err(StoreError::Invalid(format!(
            "{} events in one append; the limit is {MAX_EVENTS_PER_APPEND}",
            req.events.len()
        )));
    }
    if let Some(key) = &req.idempotency_key {
        check_text("idempotency key", key, MAX_IDEMPOTENCY_KEY_LEN)?;
    }
    for (i, e) in req.events.iter().enumerate() {
        let size = e.data.len() + e.metadata.len();
        if size > max_event_bytes {
            return Err(StoreError::TooLarge {
                index: i,
                size,
                max: max_event_bytes,
            });
        }
        check_text(
            &format!("events[{i}].type"),
            &e.event_type,
            crate::store::MAX_EVENT_TYPE_LEN,
        )?;
    }
    Ok(())
}
