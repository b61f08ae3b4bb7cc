//! Recurses without end on the first event: the stack limit must stop it.

use refract_guest::{Envelope, Projection};
use serde::Deserialize;

/// The event it reacts to (any payload).
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub enum Logged {
    IncidentLogged {},
}

/// The projection.
pub struct Hostile;

impl Projection for Hostile {
    type Event = Logged;
    type Doc = u64;
    const NAME: &'static str = "hostile-recursion";
    const VERSION: u32 = 1;

    fn create(_id: &str, _event: &Envelope<Logged>) -> Option<u64> {
        Some(deeper(std::hint::black_box(0)))
    }

    fn apply(_doc: &mut u64, _event: &Envelope<Logged>) {}
}

// On purpose: the point is that it never ends.
#[allow(unconditional_recursion, clippy::only_used_in_recursion)]
fn deeper(n: u64) -> u64 {
    std::hint::black_box(deeper(n + 1)).wrapping_add(1)
}

refract_guest::export_projection!(Hostile);
