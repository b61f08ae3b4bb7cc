//! What a version keeps in the store, and where a new version's progress starts.

use crate::runtime::{Loaded, StartPosition};
use crate::store::{ProjectionKey, Store, StoreError};

/// Puts a new subscription's progress where it starts: the beginning, the head now,
/// a sequence, or the first event at a time. Projections always start at the
/// beginning.
pub(super) async fn start_at(
    store: &dyn Store,
    key: &ProjectionKey,
    loaded: &Loaded,
) -> Result<(), StoreError> {
    let Loaded::Subscription(s) = loaded else {
        return Ok(());
    };
    let position = match s.descriptor.start {
        StartPosition::Beginning => return Ok(()),
        StartPosition::Now => store.head().await?,
        StartPosition::AfterSequence(seq) => seq,
        StartPosition::AtTime(t) => store.position_at_time(t).await?,
    };
    // Where it starts is not a replay: its effects high-water mark stays.
    store.rewind(key, position, false).await
}

/// Creates what the version keeps in the store: a projection's document set and
/// progress, a subscription's progress only.
pub(super) async fn prepare(
    store: &dyn Store,
    key: &ProjectionKey,
    loaded: &Loaded,
) -> Result<(), StoreError> {
    match loaded {
        Loaded::Projection(_) => store.prepare_projection(key).await,
        Loaded::Subscription(_) => store.prepare_subscription(key).await,
    }
}
