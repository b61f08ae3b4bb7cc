//! Lifecycles, and live projections: no agent and no stored documents; a document is its stream's
//! events folded through the version's component when it is read (for write
//! models that are always read fresh). The component declares it (option
//! `lifecycle = "live"`), the config may override it (`[components.<name>]
//! lifecycle`); only projections whose documents are their streams can be live.

use super::{Refract, ServiceError};
use crate::deploy::DeployError;
use crate::runtime::{Descriptor, Lifecycle, Loaded};
use crate::store::{ProjectionKey, StreamId};

impl Refract {
    /// The lifecycle `key` runs with, given its component's descriptor: the
    /// config's, else the component's; a live one that cannot be (documents that
    /// are not its streams) runs async, said in the log.
    pub(super) fn lifecycle_for(
        &self,
        key: &ProjectionKey,
        descriptor: &Descriptor,
        warn: bool,
    ) -> Lifecycle {
        let configured = self.components.get(&key.name).and_then(|c| c.lifecycle);
        let lifecycle = configured.unwrap_or_else(|| descriptor.lifecycle().unwrap_or_default());
        if lifecycle == Lifecycle::Inline && !self.store.supports_inline() {
            if warn {
                tracing::warn!(
                    projection = %key,
                    "inline needs the SQLite store (PostgreSQL numbers events after their \
                     transaction commits); running it async"
                );
            }
            return Lifecycle::Async;
        }
        match descriptor.check_lifecycle(lifecycle) {
            Ok(()) => lifecycle,
            Err(e) => {
                if warn {
                    tracing::warn!(projection = %key, "{e}; running it async");
                }
                Lifecycle::Async
            }
        }
    }

    /// Refuses a component that declares itself live but cannot be, unless the
    /// config sets its lifecycle (which then decides).
    pub(super) fn check_declared_lifecycle(
        &self,
        key: &ProjectionKey,
        loaded: &Loaded,
    ) -> Result<(), ServiceError> {
        let Loaded::Projection(l) = loaded else {
            return Ok(());
        };
        if self
            .components
            .get(&key.name)
            .and_then(|c| c.lifecycle)
            .is_some()
        {
            return Ok(());
        }
        let declared = l.descriptor.lifecycle().unwrap_or_default();
        let supported = match declared {
            Lifecycle::Inline if !self.store.supports_inline() => Err(format!(
                "{} is inline, which needs the SQLite store: PostgreSQL numbers events only \
                 after their transaction commits (set [components.{}] lifecycle = \"async\" \
                 to run it async)",
                key.name, key.name
            )),
            _ => Ok(()),
        };
        supported
            .and_then(|()| l.descriptor.check_lifecycle(declared))
            .map_err(|message| {
                let e = crate::runtime::RuntimeError::Guest {
                    component: key.to_string(),
                    event_sequence: None,
                    message,
                };
                ServiceError::Deploy(DeployError::Component(e))
            })
    }

    /// Whether the running version `key` is live.
    pub(super) fn is_live(&self, key: &ProjectionKey) -> bool {
        self.lifecycle_of(key) == Lifecycle::Live
    }

    /// The lifecycle the loaded projection version `key` runs with (async if it is
    /// not loaded).
    pub(super) fn lifecycle_of(&self, key: &ProjectionKey) -> Lifecycle {
        // Decided under the lock (cheap, no await): every document read asks, and
        // a copy of the descriptor (up to 1,000 event types) per read is not.
        match self.loaded_components().get(key) {
            Some(Loaded::Projection(l)) => self.lifecycle_for(key, &l.descriptor, false),
            _ => Lifecycle::Async,
        }
    }

    /// A live version's document `id`: the stream `id`'s events of its types,
    /// folded now (bounded as the aggregate route is), under one of its team's
    /// read permits.
    pub(super) async fn live_doc(
        &self,
        key: ProjectionKey,
        id: &str,
        team_permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<String, ServiceError> {
        let not_found = || ServiceError::DocumentNotFound(format!("document {id:?} in {key}"));
        let Ok(stream) = StreamId::new(id.to_owned()) else {
            return Err(not_found());
        };
        let aggregate = self.aggregate_of(key.clone(), &stream, team_permit).await;
        let aggregate = aggregate.map_err(|e| match e {
            ServiceError::TooFarBehind(_) => ServiceError::TooFarBehind(format!(
                "{key} is live: it folds stream {stream}'s events on every read, and the \
                 stream has more than {} of its events or {} MiB of them",
                crate::store::MAX_AGGREGATE_EVENTS,
                crate::store::MAX_READ_BYTES >> 20
            )),
            other => other,
        })?;
        aggregate
            .document
            .map(|d| String::from(Box::<str>::from(d)))
            .ok_or_else(not_found)
    }
}
