//! Returns a 100 MB document: a limit (memory or document size) must stop it.

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
    type Doc = String;
    const NAME: &'static str = "hostile-big-result";
    const VERSION: u32 = 1;

    fn create(_id: &str, _event: &Envelope<Logged>) -> Option<String> {
        Some("x".repeat(100 << 20))
    }

    fn apply(_doc: &mut String, _event: &Envelope<Logged>) {}
}

refract_guest::export_projection!(Hostile);
