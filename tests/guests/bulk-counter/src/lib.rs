//! `bulk-counter`: counts `BulkTick` events per stream. Its name is the fixed-width
//! placeholder [`PLACEHOLDER`], which the pool test (tests/e2e/hostile_pool.rs)
//! patches in the .wasm bytes to deploy thousands of distinct components.

use refract_guest::{Envelope, Projection};
use serde::{Deserialize, Serialize};

/// The name in the built component, patched by the test (same length).
pub const PLACEHOLDER: &str = "bulk-XXXXXX";

/// The one event it counts (payload not read).
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub enum Bulk {
    BulkTick {},
}

/// How many ticks a stream has had.
#[derive(Debug, Serialize, Deserialize)]
pub struct Ticks {
    /// Ticks counted.
    pub count: u64,
}

/// The projection.
pub struct BulkCounter;

impl Projection for BulkCounter {
    type Event = Bulk;
    type Doc = Ticks;
    const NAME: &'static str = PLACEHOLDER;
    const VERSION: u32 = 1;

    fn create(_id: &str, _event: &Envelope<Bulk>) -> Option<Ticks> {
        Some(Ticks { count: 1 })
    }

    fn apply(doc: &mut Ticks, _event: &Envelope<Bulk>) {
        doc.count += 1;
    }
}

refract_guest::export_projection!(BulkCounter);
