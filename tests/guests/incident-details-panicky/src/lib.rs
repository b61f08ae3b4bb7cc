//! `incident-details` version 1 rebuilt with a bug: the same name and version as the
//! sample, and it panics on the first event of any stream whose id starts with
//! `boom-`. A hot reload of it must fail as a candidate while the running build keeps
//! serving its documents.

use refract_guest::{Envelope, Projection};
use serde::{Deserialize, Serialize};

/// The help-desk events it handles (no payload fields read).
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)]
pub enum IncidentEvent {
    IncidentLogged {},
    IncidentCategorised {},
    IncidentPrioritised {},
    AgentAssignedToIncident {},
    IncidentResolved {},
    ResolutionAcknowledgedByCustomer {},
    IncidentClosed {},
}

/// Its document: a count of the incident's events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counted {
    /// Events applied to this document.
    pub events_seen: u64,
}

/// The buggy projection: still `incident-details` version 1.
pub struct PanickyIncidentDetails;

impl Projection for PanickyIncidentDetails {
    type Event = IncidentEvent;
    type Doc = Counted;
    const NAME: &'static str = "incident-details";
    const VERSION: u32 = 1;

    fn create(id: &str, _event: &Envelope<IncidentEvent>) -> Option<Counted> {
        if id.starts_with("boom-") {
            panic!("the new build cannot handle incident {id}");
        }
        Some(Counted { events_seen: 1 })
    }

    fn apply(doc: &mut Counted, _event: &Envelope<IncidentEvent>) {
        doc.events_seen += 1;
    }
}

refract_guest::export_projection!(PanickyIncidentDetails);
