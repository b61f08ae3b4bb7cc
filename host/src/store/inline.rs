//! The store's side of inline projections (issue 14): an append that projects
//! versions inside its own transaction, so its events and their documents land
//! together or not at all. The store knows nothing of components: it asks an
//! [`InlineProjector`] which versions to project and for their document writes,
//! hands it the appended events and a way to read the documents as the transaction
//! sees them, and writes what it answers with the version's progress.

use std::collections::HashMap;

use async_trait::async_trait;

use super::{DocWrite, Position, ProjectionKey, RecordedEvent, StoreError};

/// A version an append may project inline.
#[derive(Debug, Clone)]
pub struct InlineVersion {
    /// The version.
    pub key: ProjectionKey,
    /// The event types it handles: events of these types committed after its
    /// position and before the append mean it is behind (its agent catches up).
    pub event_types: Vec<String>,
    /// The code it runs (its component's hash): a version whose code was replaced
    /// since (a hotfix, a reload) is not projected by the old code.
    pub sha256: String,
}

/// What became of one inline version in an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InlineOutcome {
    /// Its documents hold the append's events (`events` of its types it applied).
    Projected {
        /// The version.
        key: ProjectionKey,
        /// Events it applied.
        events: usize,
    },
    /// Not projected: it is behind (earlier events of its types wait for its agent),
    /// or not running; its agent projects the append's events later.
    Deferred {
        /// The version.
        key: ProjectionKey,
        /// Why, for the append's answer.
        reason: String,
    },
}

/// Why an inline projection refused an append (its guest failed, or the host could
/// not run it): the append writes nothing. The error is the projector's own type,
/// for it to take back out.
#[derive(Debug)]
pub struct InlineRefusal(pub Box<dyn std::error::Error + Send + Sync>);

/// An inline append's failure.
#[derive(Debug, thiserror::Error)]
pub enum InlineAppendError {
    /// The store refused or failed the append.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An inline projection refused it.
    #[error("{}", .0.0)]
    Refused(InlineRefusal),
}

/// The documents of the version being projected, as the append's transaction sees
/// them.
#[async_trait]
pub trait InlineDocs: Send {
    /// The current bodies of those of `ids` that exist; `None` if together they
    /// are over `max_bytes`.
    async fn load(
        &mut self,
        ids: &[&str],
        max_bytes: usize,
    ) -> Result<Option<HashMap<String, String>>, StoreError>;
}

/// Runs the inline projections of an append (the service, with its components).
#[async_trait]
pub trait InlineProjector: Send + Sync {
    /// The versions to project.
    fn versions(&self) -> &[InlineVersion];

    /// `key`'s document writes for the appended `events` (all of them, in order,
    /// numbered), reading its documents through `docs`; a refusal rolls the append
    /// back.
    async fn project(
        &self,
        key: &ProjectionKey,
        events: &[RecordedEvent],
        docs: &mut dyn InlineDocs,
    ) -> Result<InlineWrites, InlineRefusal>;
}

/// What an inline projection of one version makes of an append.
#[derive(Debug, Default)]
pub struct InlineWrites {
    /// Its document changes.
    pub writes: Vec<DocWrite>,
    /// The appended events it handled (the others count as passed over).
    pub applied: usize,
}

/// A version's progress as an inline append reads it inside its transaction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InlineProgress {
    /// Its position.
    pub position: Position,
    /// Whether it runs (a paused version is not projected).
    pub running: bool,
    /// Its document set, if it has one.
    pub doc_set: Option<i64>,
}
