//! What an emit is checked for when the guest calls `emit`, not at commit: a bad
//! event refused then is the guest's error (naming the event and the field), so the
//! subscription's error policy applies, instead of a commit failing over and over.

use serde::de::IgnoredAny;

use crate::identity::{MAX_EVENT_TYPE_LEN, MAX_IDEMPOTENCY_KEY_LEN, check_text};
use crate::runtime::EmittedEvent;

/// Most events in one emit (as in one append).
pub(super) const MAX_EVENTS_PER_EMIT: usize = crate::store::MAX_EVENTS_PER_APPEND;

/// Checks one emit's events and key, as the store would at commit, plus each event's
/// size (data and metadata bytes) against `max_event_bytes`. The error names the
/// stream, the event (`events[i]`, its type) and the field.
pub(crate) fn check_emit(
    stream: &str,
    events: &[EmittedEvent],
    idempotency_key: Option<&str>,
    max_event_bytes: usize,
) -> Result<(), String> {
    if events.is_empty() {
        return Err(format!("emit to {stream}: no events"));
    }
    if events.len() > MAX_EVENTS_PER_EMIT {
        return Err(format!(
            "emit to {stream}: {} events in one emit; the limit is {MAX_EVENTS_PER_EMIT}",
            events.len()
        ));
    }
    if let Some(key) = idempotency_key {
        check_text("idempotency_key", key, MAX_IDEMPOTENCY_KEY_LEN)
            .map_err(|e| format!("emit to {stream}: {e}"))?;
    }
    for (i, e) in events.iter().enumerate() {
        let at =
            |what: String| format!("emit to {stream}: events[{i}] ({:?}): {what}", e.event_type);
        check_text("event_type", &e.event_type, MAX_EVENT_TYPE_LEN)
            .map_err(|err| at(err.into()))?;
        let json = |field: &str, text: &str| {
            serde_json::from_str::<IgnoredAny>(text)
                .map(|_| ())
                .map_err(|err| at(format!("{field} is not JSON: {err}")))
        };
        json("data", &e.data)?;
        if let Some(m) = &e.metadata {
            json("metadata", m)?;
        }
        let size = e.data.len() + e.metadata.as_ref().map_or(2, String::len);
        if size > max_event_bytes {
            return Err(at(format!(
                "data and metadata are {size} bytes; the maximum event size is \
                 {max_event_bytes} bytes (max_event_bytes)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ty: &str, data: &str) -> EmittedEvent {
        EmittedEvent {
            event_type: ty.into(),
            data: data.into(),
            metadata: None,
        }
    }

    #[test]
    fn names_the_event_and_the_field() {
        let e = check_emit("s", &[ev("Ok", "{}"), ev("", "{}")], None, 100).unwrap_err();
        assert!(
            e.contains("events[1]") && e.contains("event_type is empty"),
            "{e}"
        );
        let e = check_emit("s", &[ev("Bad\n", "{}")], None, 100).unwrap_err();
        assert!(e.contains("event_type") && e.contains("control"), "{e}");
        let e = check_emit("s", &[ev("T", "{")], None, 100).unwrap_err();
        assert!(e.contains("events[0] (\"T\"): data is not JSON"), "{e}");
        let e = check_emit("s", &[ev("T", "{}")], Some(""), 100).unwrap_err();
        assert!(e.contains("idempotency_key is empty"), "{e}");
        let big = format!("\"{}\"", "x".repeat(100));
        let e = check_emit("s", &[ev("T", &big)], None, 100).unwrap_err();
        assert!(e.contains("maximum event size is 100 bytes"), "{e}");
        assert!(check_emit("s", &[ev("T", &big)], None, 104).is_ok());
    }

    #[test]
    fn one_emit_over_the_append_limit_is_refused() {
        let over = vec![ev("T", "{}"); MAX_EVENTS_PER_EMIT + 1];
        let e = check_emit("s", &over, None, 100).unwrap_err();
        assert!(
            e.contains(&format!("{} events in one emit", MAX_EVENTS_PER_EMIT + 1)),
            "{e}"
        );
        assert!(check_emit("s", &over[1..], None, 100).is_ok());
    }
}
