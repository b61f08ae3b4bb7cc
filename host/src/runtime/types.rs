//! The runtime's own view of what guests say: the latest WIT version's shapes. Older
//! WIT versions convert into these, so the daemon handles one set of types.

use serde::Serialize;

/// What kind of component this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ComponentKind {
    /// Folds events into documents.
    Projection,
    /// Reacts to pages of events.
    Subscription,
}

/// A component's description of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Descriptor {
    /// The projection's name.
    pub name: String,
    /// Its version.
    pub version: u32,
    /// Its kind.
    pub kind: ComponentKind,
    /// The event types it handles.
    pub event_types: Vec<String>,
    /// Free-form options.
    pub options: Vec<(String, String)>,
}

/// Longest projection name accepted.
pub const MAX_NAME_LEN: usize = 48;

impl Descriptor {
    /// Checks the name, version, kind and event types, naming the first problem.
    pub fn validate(&self) -> Result<(), String> {
        let n = &self.name;
        if n.is_empty() || n.len() > MAX_NAME_LEN {
            return Err(format!("name {n:?} must be 1 to {MAX_NAME_LEN} characters"));
        }
        let ok = n
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !ok || !n.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(format!(
                "name {n:?} must start with a-z and hold only a-z, 0-9, '-' and '_'"
            ));
        }
        if self.version == 0 {
            return Err("version must be 1 or more".into());
        }
        if self.kind != ComponentKind::Projection {
            return Err(format!("kind {:?} is not supported yet", self.kind));
        }
        if self.event_types.is_empty() {
            return Err("declares no event types".into());
        }
        if let Some(t) = self
            .event_types
            .iter()
            .find(|t| t.is_empty() || t.len() > 256)
        {
            return Err(format!("event type {t:?} must be 1 to 256 characters"));
        }
        Ok(())
    }
}

/// Which events of a page touch one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    /// The document's id.
    pub doc_id: String,
    /// Indices into the page, in page order.
    pub events: Vec<u32>,
}

/// What became of one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocChange {
    /// New JSON.
    Put(String),
    /// Deleted.
    Delete,
    /// Unchanged.
    Keep,
}
