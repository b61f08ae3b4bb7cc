//! The runtime's own view of what projections say: the latest WIT version's shapes.
//! Older WIT versions convert into these, so the daemon handles one set of types.
//! Bottom layer: imports only the crate's `event` (and the identity rules).

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;
use wasmtime::component::{ComponentType, Lift};

use crate::event::Event;
use crate::identity::{MAX_EVENT_TYPE_LEN, doc_key, preview};

/// What kind of component this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ComponentKind {
    /// Folds events into documents.
    Projection,
    /// Reacts to pages of events.
    Subscription,
}

/// A version of the WIT package `refract:projection` that refract runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum WitVersion {
    /// `refract:projection@1.0.0`.
    #[serde(rename = "1.0.0")]
    V1_0,
    /// `refract:projection@1.1.0`: typed `documents` and `max-page-size` in the descriptor.
    #[serde(rename = "1.1.0")]
    V1_1,
    /// `refract:projection@1.2.0`: documents in named collections (projections only).
    #[serde(rename = "1.2.0")]
    V1_2,
}

impl WitVersion {
    /// Every version refract runs, newest first: the order a component's exports are
    /// tried in.
    pub const SUPPORTED: [WitVersion; 3] = [WitVersion::V1_2, WitVersion::V1_1, WitVersion::V1_0];

    /// The version number, as in the package name (`1.1.0`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1_0 => "1.0.0",
            Self::V1_1 => "1.1.0",
            Self::V1_2 => "1.2.0",
        }
    }
}

impl fmt::Display for WitVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a component's events map to its documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DocumentMode {
    /// One document per stream: the host slices pages by stream itself.
    PerStream,
    /// The documents the guest's `slice` names.
    Custom,
}

/// A component's description of itself, in the latest WIT version's terms.
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
    /// How its events map to its documents.
    pub documents: DocumentMode,
    /// The most events it takes in one call, if it limits them.
    pub max_page_size: Option<u32>,
    /// Free-form options.
    pub options: Vec<(String, String)>,
    /// The named collections it writes besides its default one (1.2.0).
    pub collections: Vec<String>,
    /// The WIT version the component was built against.
    pub wit_version: WitVersion,
}

/// When a projection's documents are made: by the daemon in the background
/// (`async`, the default), or from the stream's events on every read (`live`: no
/// documents stored, for write models that are always read fresh). A guest says
/// it with the descriptor option [`LIFECYCLE_OPTION`]; the config may override it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifecycle {
    /// Projected by the daemon's agent, stored, read as stored.
    #[default]
    Async,
    /// Folded from the stream's events on each read; nothing stored, no agent.
    Live,
    /// Projected inside the transaction of each of its team's appends once caught
    /// up (its agent catches it up and feeds it other teams' events), so the append's
    /// answer means its documents hold the events (SQLite store).
    Inline,
}

impl Lifecycle {
    /// Its name in options and the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Async => "async",
            Self::Live => "live",
            Self::Inline => "inline",
        }
    }
}

/// The descriptor option (both WIT versions) naming a projection's [`Lifecycle`].
pub const LIFECYCLE_OPTION: &str = "lifecycle";

/// The descriptor option by which a 1.2.0 component says its `slice` calls
/// `host.lookup`.
pub const LOOKUPS_OPTION: (&str, &str) = ("lookups", "true");

/// The 1.0.0 descriptor option by which a guest says its documents are its streams
/// (1.1.0 has the typed `documents` field instead).
pub const DOCUMENTS_OPTION: (&str, &str) = ("documents", "per-stream");

impl Descriptor {
    /// Whether the guest keeps one document per stream, so the host can slice pages
    /// itself instead of calling the guest.
    pub fn per_stream(&self) -> bool {
        self.documents == DocumentMode::PerStream
    }

    /// How many events the host hands the guest in one call: `configured`, or the
    /// guest's maximum if that is smaller.
    pub fn page_size(&self, configured: usize) -> usize {
        let max = self.max_page_size.map_or(usize::MAX, |m| m as usize);
        configured.min(max).max(1)
    }

    /// Whether it looks its own documents up while slicing (option
    /// [`LOOKUPS_OPTION`], WIT 1.2.0): its agent then settles each commit before the
    /// next page's `slice`, so a lookup sees every page before.
    pub fn uses_lookups(&self) -> bool {
        self.wit_version >= WitVersion::V1_2
            && self
                .options
                .iter()
                .any(|(k, v)| (k.as_str(), v.as_str()) == LOOKUPS_OPTION)
    }

    /// The lifecycle it declares (option [`LIFECYCLE_OPTION`]; `async` without it).
    pub fn lifecycle(&self) -> Result<Lifecycle, String> {
        let Some((_, value)) = self.options.iter().find(|(k, _)| k == LIFECYCLE_OPTION) else {
            return Ok(Lifecycle::Async);
        };
        match value.as_str() {
            "async" => Ok(Lifecycle::Async),
            "live" => Ok(Lifecycle::Live),
            "inline" => Ok(Lifecycle::Inline),
            other => Err(format!(
                "option {LIFECYCLE_OPTION} = {}: it must be \"async\", \"live\" or \"inline\"",
                crate::identity::preview(other)
            )),
        }
    }

    /// Whether `lifecycle` can run it: a live projection folds one stream's events
    /// into the stream's document on each read, so its documents must be its streams.
    pub fn check_lifecycle(&self, lifecycle: Lifecycle) -> Result<(), String> {
        if lifecycle == Lifecycle::Live && !self.per_stream() {
            return Err(format!(
                "{} is live, but it chooses its own document ids: a live projection's \
                 documents must be its streams (Documents::PerStream)",
                self.name
            ));
        }
        Ok(())
    }

    /// Checks the name, version, event types and settings, naming the first problem.
    pub fn validate(&self) -> Result<(), String> {
        validate_identity(&self.name, self.version, &self.event_types)?;
        if self.max_page_size == Some(0) {
            return Err("max-page-size must be 1 or more".into());
        }
        self.validate_collections()?;
        // Whether it can be live is decided with the config ([components] lifecycle).
        self.lifecycle().map(|_| ())
    }

    /// Its named collections: at most [`MAX_COLLECTIONS`](doc_key::MAX_COLLECTIONS),
    /// each a plain name, none twice; they need documents it names itself.
    fn validate_collections(&self) -> Result<(), String> {
        let n = self.collections.len();
        if n > doc_key::MAX_COLLECTIONS {
            return Err(format!(
                "declares {n} collections; the limit is {}",
                doc_key::MAX_COLLECTIONS
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for c in &self.collections {
            doc_key::check_collection(c)?;
            if !seen.insert(c) {
                return Err(format!("declares collection {c:?} twice"));
            }
        }
        if n > 0 && self.per_stream() {
            return Err(
                "declares collections, but its documents are its streams (per-stream): \
                 only a projection that names its documents can put them in collections"
                    .into(),
            );
        }
        Ok(())
    }

    /// Whether `collection` is one it declared.
    pub fn has_collection(&self, collection: &str) -> bool {
        self.collections.iter().any(|c| c == collection)
    }
}

/// Most event types one component may declare: every page read names them all
/// (in SQL) and the list is read on nearly every request.
pub const MAX_EVENT_TYPES: usize = 1_000;

/// Bytes the host takes from a `describe`: far above what a valid descriptor needs
/// (so too many event types are refused by count, with a clear message), far below
/// what a guest could make the host copy otherwise.
pub(crate) const DESCRIBE_FUEL: usize = 8 << 20;

/// Checks what every component declares, of either kind: its name, its version
/// and its event types (at most [`MAX_EVENT_TYPES`], each 1 to
/// [`MAX_EVENT_TYPE_LEN`] bytes without control characters), naming the first
/// problem; the guest's text in the message is clipped.
pub(crate) fn validate_identity(
    name: &str,
    version: u32,
    event_types: &[String],
) -> Result<(), String> {
    crate::identity::check_component_name(name)?;
    if version == 0 {
        return Err("version must be 1 or more".into());
    }
    if event_types.is_empty() {
        return Err("declares no event types".into());
    }
    if event_types.len() > MAX_EVENT_TYPES {
        return Err(format!(
            "declares {} event types; the limit is {MAX_EVENT_TYPES}",
            event_types.len()
        ));
    }
    let bad = |t: &String| !crate::identity::is_text(t, MAX_EVENT_TYPE_LEN);
    if let Some((i, t)) = event_types.iter().enumerate().find(|(_, t)| bad(t)) {
        return Err(format!(
            "event type #{} {} is {} bytes; each must be 1 to {MAX_EVENT_TYPE_LEN} bytes \
             without control characters",
            i + 1,
            preview(t),
            t.len()
        ));
    }
    Ok(())
}

/// Which events of a page touch one document. Lifted straight from the guest: WIT
/// `doc-slice` has this shape in every version.
#[derive(Debug, Clone, PartialEq, Eq, ComponentType, Lift)]
#[component(record)]
pub struct Slice {
    /// The document's id.
    #[component(name = "doc-id")]
    pub doc_id: String,
    /// Indices into the page, in page order.
    pub events: Vec<u32>,
}

/// What became of one document. Lifted straight from the guest: WIT `doc-change` has
/// this shape in every version.
#[derive(Debug, Clone, PartialEq, Eq, ComponentType, Lift)]
#[component(variant)]
pub enum DocChange {
    /// New JSON.
    #[component(name = "put")]
    Put(String),
    /// Deleted.
    #[component(name = "delete")]
    Delete,
    /// Unchanged.
    #[component(name = "keep")]
    Keep,
}

/// One document to bring up to date: its current JSON and its events (page indices).
#[derive(Debug, Clone)]
pub struct DocInput {
    /// The document's id.
    pub id: String,
    /// Its current JSON, if it exists.
    pub state: Option<String>,
    /// Indices of its events in the page.
    pub events: Vec<u32>,
}

/// Groups a page by stream, in order of first appearance: what `slice` returns for a
/// guest whose documents are its streams.
pub fn slice_by_stream(page: &[Event]) -> Vec<Slice> {
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
        let ev = |seq: i64, stream: &str| Event {
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

    #[test]
    fn a_guest_maximum_lowers_the_page_size_and_must_be_positive() {
        let mut d = Descriptor {
            name: "p".into(),
            version: 1,
            kind: ComponentKind::Projection,
            event_types: vec!["T".into()],
            documents: DocumentMode::PerStream,
            max_page_size: None,
            options: Vec::new(),
            collections: Vec::new(),
            wit_version: WitVersion::V1_0,
        };
        assert_eq!((d.page_size(5000), d.page_size(0)), (5000, 1));
        d.max_page_size = Some(300);
        assert_eq!((d.page_size(5000), d.page_size(20)), (300, 20));
        assert_eq!(d.validate(), Ok(()));
        d.max_page_size = Some(0);
        assert_eq!(d.validate(), Err("max-page-size must be 1 or more".into()));
        let types = |n: usize| (0..n).map(|i| format!("T{i}")).collect::<Vec<_>>();
        d.max_page_size = None;
        d.event_types = types(MAX_EVENT_TYPES);
        assert_eq!(d.validate(), Ok(()));
        d.event_types = types(100_000);
        assert_eq!(
            d.validate(),
            Err("declares 100000 event types; the limit is 1000".into())
        );
        d.event_types = vec!["T".into(), "y".repeat(10 << 20)];
        let e = d.validate().expect_err("too long");
        assert!(e.starts_with("event type #2 \"yyy"), "{e}");
        assert!(e.contains("is 10485760 bytes; each must be 1 to 256 bytes") && e.len() < 300);
        d.event_types = vec!["A\nB".into()];
        assert!(
            d.validate()
                .is_err_and(|e| e.contains("without control characters"))
        );
        let json = serde_json::to_value(WitVersion::SUPPORTED).expect("serializes");
        assert_eq!(json, serde_json::json!(["1.2.0", "1.1.0", "1.0.0"]));
    }

    #[test]
    fn collections_are_plain_names_at_most_sixteen_and_need_named_documents() {
        let mut d = Descriptor {
            name: "p".into(),
            version: 1,
            kind: ComponentKind::Projection,
            event_types: vec!["T".into()],
            documents: DocumentMode::Custom,
            max_page_size: None,
            options: Vec::new(),
            collections: vec!["word".into(), "dictionary".into()],
            wit_version: WitVersion::V1_2,
        };
        assert_eq!(d.validate(), Ok(()));
        assert!(d.has_collection("word") && !d.has_collection("words"));
        d.collections = (0..17).map(|i| format!("c{i}")).collect();
        assert_eq!(
            d.validate(),
            Err("declares 17 collections; the limit is 16".into())
        );
        d.collections = vec!["word".into(), "word".into()];
        assert_eq!(
            d.validate(),
            Err("declares collection \"word\" twice".into())
        );
        d.collections = vec!["Big Word".into()];
        assert!(d.validate().is_err_and(|e| e.contains("a-z, 0-9")));
        d.collections = vec!["word".into()];
        d.documents = DocumentMode::PerStream;
        assert!(d.validate().is_err_and(|e| e.contains("per-stream")));
    }
}

#[cfg(test)]
mod lifecycle_tests {
    use super::*;

    fn descriptor(options: &[(&str, &str)], documents: DocumentMode) -> Descriptor {
        Descriptor {
            name: "p".into(),
            version: 1,
            kind: ComponentKind::Projection,
            event_types: vec!["T".into()],
            documents,
            max_page_size: None,
            options: options
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            collections: Vec::new(),
            wit_version: WitVersion::V1_1,
        }
    }

    #[test]
    fn the_lifecycle_option_is_read_and_checked_by_name() {
        let per_stream = DocumentMode::PerStream;
        assert_eq!(
            descriptor(&[], per_stream).lifecycle(),
            Ok(Lifecycle::Async)
        );
        let live = descriptor(&[("lifecycle", "live")], per_stream);
        assert_eq!(live.lifecycle(), Ok(Lifecycle::Live));
        assert_eq!(live.validate(), Ok(()));
        let err = descriptor(&[("lifecycle", "inline-ish")], per_stream)
            .validate()
            .expect_err("unknown");
        assert!(
            err.contains("lifecycle") && err.contains("inline-ish"),
            "{err}"
        );
        // Decided with the config (which may make it async), not by validate.
        let custom = descriptor(&[("lifecycle", "live")], DocumentMode::Custom);
        assert_eq!(custom.validate(), Ok(()));
        let err = custom
            .check_lifecycle(Lifecycle::Live)
            .expect_err("live needs per-stream documents");
        assert!(err.contains("document ids"), "{err}");
        assert_eq!(custom.check_lifecycle(Lifecycle::Async), Ok(()));
    }
}
