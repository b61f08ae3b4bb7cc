//! Panics on the first event: reported with the event, the instance rebuilt.

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
    const NAME: &'static str = "hostile-panic";
    const VERSION: u32 = 1;

    fn create(_id: &str, _event: &Envelope<Logged>) -> Option<u64> {
        panic!("hostile guest gives up")
    }

    fn apply(_doc: &mut u64, _event: &Envelope<Logged>) {}
}

refract_guest::export_projection!(Hostile);
