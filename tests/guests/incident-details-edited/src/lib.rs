//! `incident-details` version 1 as a developer edited it during development: the
//! same name and version as the sample, other documents (a lowercase status word,
//! the resolution, and a count of the events seen). `refract dev` must swap it in
//! for the sample's build and re-project, without a restart.

use refract_guest::{Envelope, Projection};
use serde::{Deserialize, Serialize};

/// The help-desk events it handles (the payload fields it reads, nothing else).
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)]
pub enum IncidentEvent {
    IncidentLogged { customer_id: String },
    IncidentCategorised {},
    IncidentPrioritised { priority: String },
    AgentAssignedToIncident {},
    IncidentResolved { resolution: String },
    ResolutionAcknowledgedByCustomer {},
    IncidentClosed {},
}

/// The edited document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentSummary {
    /// The incident's id (its stream id).
    pub id: String,
    /// The customer who logged it.
    pub customer_id: String,
    /// `open`, `resolved`, `acknowledged` or `closed`.
    pub status: String,
    /// Its latest priority.
    pub priority: Option<String>,
    /// How it was resolved, once it was.
    pub resolution: Option<String>,
    /// Events applied to this document.
    pub events_seen: u64,
}

/// The edited projection: still `incident-details` version 1.
pub struct EditedIncidentDetails;

impl Projection for EditedIncidentDetails {
    type Event = IncidentEvent;
    type Doc = IncidentSummary;
    const NAME: &'static str = "incident-details";
    const VERSION: u32 = 1;

    fn create(id: &str, event: &Envelope<IncidentEvent>) -> Option<IncidentSummary> {
        match &event.event {
            IncidentEvent::IncidentLogged { customer_id } => Some(IncidentSummary {
                id: id.to_owned(),
                customer_id: customer_id.clone(),
                status: "open".into(),
                priority: None,
                resolution: None,
                events_seen: 1,
            }),
            _ => None,
        }
    }

    fn apply(doc: &mut IncidentSummary, event: &Envelope<IncidentEvent>) {
        doc.events_seen += 1;
        match &event.event {
            IncidentEvent::IncidentLogged { .. }
            | IncidentEvent::IncidentCategorised {}
            | IncidentEvent::AgentAssignedToIncident {} => {}
            IncidentEvent::IncidentPrioritised { priority } => {
                doc.priority = Some(priority.clone());
            }
            IncidentEvent::IncidentResolved { resolution } => {
                doc.status = "resolved".into();
                doc.resolution = Some(resolution.clone());
            }
            IncidentEvent::ResolutionAcknowledgedByCustomer {} => {
                doc.status = "acknowledged".into();
            }
            IncidentEvent::IncidentClosed {} => doc.status = "closed".into(),
        }
    }
}

refract_guest::export_projection!(EditedIncidentDetails);
