//! Asks for 1 GiB on the first event: the memory limit must stop it.

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
    const NAME: &'static str = "hostile-alloc";
    const VERSION: u32 = 1;

    fn create(_id: &str, _event: &Envelope<Logged>) -> Option<u64> {
        let block = vec![1u8; 1 << 30];
        Some(std::hint::black_box(&block).len() as u64)
    }

    fn apply(_doc: &mut u64, _event: &Envelope<Logged>) {}
}

refract_guest::export_projection!(Hostile);
