//! Identity rules: what a name, a stream id, a key or a tenant may be, one validator
//! each, and the version an append expects its stream at. Every layer that checks
//! one (the API, the config, the runtime, the store) asks here, so a rule changes in
//! one place. Nothing here imports another module of the crate: it is the bottom
//! layer, which `runtime/` and `store/` may both use without knowing each other.
//!
//! The rules differ on purpose, each for what it guards:
//! - [`check_component_name`]: what a guest calls its component (starts with a-z);
//! - [`check_team_name`]: a `[teams.<name>]` key (may start with a digit or `-`);
//! - [`check_tenant`]: a tenant (upper case and `.` allowed, as tenant ids are);
//! - [`check_text`]: free text ids (stream ids, event types, idempotency keys,
//!   document ids, stream patterns): any characters but control ones.

pub mod doc_key;
mod namespace;
mod version;

pub use namespace::{DEFAULT_TEAM, SHADOW_SUFFIX, qualified, split, team_of};
pub use version::ExpectedVersion;

/// Longest component (projection or subscription) name accepted.
pub const MAX_NAME_LEN: usize = 48;
/// Longest team name accepted.
pub const MAX_TEAM_NAME_LEN: usize = 32;
/// Longest tenant accepted, in bytes.
pub const MAX_TENANT_LEN: usize = 64;
/// Longest stream id (and document id) accepted, in bytes.
pub const MAX_STREAM_ID_LEN: usize = 256;
/// Longest event type accepted, in bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 256;
/// Longest idempotency key accepted, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 256;

/// A refused identity; the message names the thing and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl From<Invalid> for String {
    fn from(e: Invalid) -> Self {
        e.0
    }
}

/// Free text used as an id: 1 to `max` bytes without control characters (which
/// would forge log lines and break terminals). `what` names it in the error.
pub fn check_text(what: &str, value: &str, max: usize) -> Result<(), Invalid> {
    if value.is_empty() {
        return Err(Invalid(format!("{what} is empty")));
    }
    if value.len() > max {
        return Err(Invalid(format!(
            "{what} is {} bytes long; the limit is {max}",
            value.len()
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(Invalid(format!(
            "{what} {value:?} contains a control character"
        )));
    }
    Ok(())
}

/// Whether `value` passes [`check_text`], for callers that word the refusal
/// themselves.
pub fn is_text(value: &str, max: usize) -> bool {
    check_text("", value, max).is_ok()
}

/// A stream id: [`check_text`] up to [`MAX_STREAM_ID_LEN`] bytes.
pub fn check_stream_id(id: &str) -> Result<(), Invalid> {
    check_text("stream id", id, MAX_STREAM_ID_LEN)
}

/// Longest node id (`--node-id`).
pub const MAX_NODE_ID_LEN: usize = 128;

/// A node's id: [`check_text`] up to [`MAX_NODE_ID_LEN`] bytes.
pub fn validate_node_id(id: &str) -> Result<(), String> {
    Ok(check_text("node id", id, MAX_NODE_ID_LEN)?)
}

/// A component's own name: 1 to [`MAX_NAME_LEN`] bytes of a-z, 0-9, `-` and `_`,
/// starting with a-z. No `.`: that separates a team from its component's name.
/// The guest's text in the error is clipped.
pub fn check_component_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(Invalid(format!(
            "name {} ({} bytes) must be 1 to {MAX_NAME_LEN} characters",
            preview(name),
            name.len()
        )));
    }
    if !lower_word(name) || !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(Invalid(format!(
            "name {name:?} must start with a-z and hold only a-z, 0-9, '-' and '_'"
        )));
    }
    Ok(())
}

/// A team's name: 1 to [`MAX_TEAM_NAME_LEN`] of a-z, 0-9, `-` and `_` (any first
/// character of these: configs already name teams so). No `.`, as for components.
pub fn check_team_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty() || name.len() > MAX_TEAM_NAME_LEN || !lower_word(name) {
        return Err(Invalid(format!(
            "team name {name:?} must be 1 to {MAX_TEAM_NAME_LEN} of a-z, 0-9, '-' and '_'"
        )));
    }
    Ok(())
}

/// A tenant: 1 to [`MAX_TENANT_LEN`] bytes of `A-Z a-z 0-9 . _ -`.
pub fn check_tenant(tenant: &str) -> Result<(), Invalid> {
    if tenant.is_empty() || tenant.len() > MAX_TENANT_LEN {
        return Err(Invalid(format!(
            "tenant must be 1 to {MAX_TENANT_LEN} characters (got {} bytes)",
            tenant.len()
        )));
    }
    if let Some(c) = tenant
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(Invalid(format!(
            "tenant {tenant:?} holds {c:?}; only A-Z, a-z, 0-9, '.', '_' and '-' are allowed"
        )));
    }
    Ok(())
}

/// Whether every character is a-z, 0-9, `-` or `_`.
fn lower_word(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// The start of a guest's string, quoted, for an error message.
pub(crate) fn preview(s: &str) -> String {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let more = if end < s.len() { "…" } else { "" };
    format!("{:?}{more}", &s[..end])
}

#[cfg(test)]
mod tests;
