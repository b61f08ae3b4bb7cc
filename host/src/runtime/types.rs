//! The runtime's own view of what guests say: the latest WIT version's shapes. Older
//! WIT versions convert into these, so the daemon handles one set of types.

use std::collections::HashMap;

use serde::Serialize;

use crate::store::RecordedEvent;

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

/// The descriptor option by which a guest says its documents are its streams.
pub const DOCUMENTS_OPTION: (&str, &str) = ("documents", "per-stream");

/// Longest projection name accepted.
pub const MAX_NAME_LEN: usize = 48;

impl Descriptor {
    /// Whether the guest keeps one document per stream, so the host can slice pages
    /// itself instead of calling the guest.
    pub fn per_stream(&self) -> bool {
        self.options
            .iter()
            .any(|(k, v)| (k.as_str(), v.as_str()) == DOCUMENTS_OPTION)
    }

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

/// Groups a page by stream, in order of first appearance: what `slice` returns for a
/// guest whose documents are its streams.
pub fn slice_by_stream(page: &[RecordedEvent]) -> Vec<Slice> {
    let mut slices: Vec<Slice> = Vec::new();
    let mut at: HashMap<&str, usize> = HashMap::new();
    for (i, e) in page.iter().enumerate() {
        let n = *at.entry(e.stream_id.as_str()).or_insert_with(|| {
            slices.push(Slice {
                doc_id: e.stream_id.clone(),
                events: Vec::new(),
            });
            slices.len() - 1
        });
        slices[n].events.push(i as u32);
    }
    slices
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slicing_by_stream_keeps_first_appearance_and_page_order() {
        let ev = |seq: i64, stream: &str| RecordedEvent {
            sequence: seq,
            stream_id: stream.into(),
            stream_version: 1,
            event_type: "T".into(),
            data: "{}".into(),
            metadata: "{}".into(),
            tenant: None,
            timestamp: 0,
        };
        let page = [ev(1, "b"), ev(2, "a"), ev(3, "b"), ev(4, "c"), ev(5, "a")];
        let got: Vec<(String, Vec<u32>)> = slice_by_stream(&page)
            .into_iter()
            .map(|s| (s.doc_id, s.events))
            .collect();
        let want = [("b", vec![0, 2]), ("a", vec![1, 4]), ("c", vec![3])];
        assert_eq!(got, want.map(|(id, ev)| (id.to_owned(), ev)));
    }
}
