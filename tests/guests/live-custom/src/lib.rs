//! `live-custom`: declares itself live, but its documents are not its streams (every
//! event counts in the document `all`), which a live projection cannot fold from one
//! stream: refused at deploy unless the config sets its lifecycle.

use refract_guest::{Documents, Envelope, Lifecycle, Projection};
use serde::Deserialize;

/// The events it counts.
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub enum Event {
    ValueAdded {},
}

/// The projection.
pub struct LiveCustom;

impl Projection for LiveCustom {
    type Event = Event;
    type Doc = u64;
    const NAME: &'static str = "live-custom";
    const VERSION: u32 = 1;
    const DOCUMENTS: Documents = Documents::Custom;
    const LIFECYCLE: Lifecycle = Lifecycle::Live;

    fn doc_id(_event: &Envelope<Event>) -> String {
        "all".to_owned()
    }

    fn create(_id: &str, _event: &Envelope<Event>) -> Option<u64> {
        Some(1)
    }

    fn apply(count: &mut u64, _event: &Envelope<Event>) {
        *count += 1;
    }
}

refract_guest::export_projection!(LiveCustom);
