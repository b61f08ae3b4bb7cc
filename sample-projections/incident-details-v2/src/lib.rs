//! The help desk's incident details (seed 001), version 2: version 1's document plus
//! `duplicate_ids`, the incidents this one was marked a duplicate of (in event order),
//! from the `IncidentDuplicated` event version 1 does not know.
//!
//! Deployed beside version 1, it rebuilds from the first event into its own documents
//! while version 1 keeps serving and skips `IncidentDuplicated`.
//!
//! Built for `wasm32-wasip2` this crate is a refract projection component; natively it
//! is a library, so the projection can be run and compared with
//! [`refract_guest::testing::project`].

use refract_guest::{Envelope, Projection};
use serde::{Deserialize, Serialize};

/// The help desk events this projection handles; each variant name is an event type.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub enum IncidentEvent {
    /// A customer reported an incident.
    IncidentLogged {
        /// The customer's id.
        customer_id: String,
        /// How to reach the customer (any JSON object).
        contact: serde_json::Value,
        /// What the customer reported.
        description: String,
        /// Who logged it.
        logged_by: String,
    },
    /// The incident was given a category.
    IncidentCategorised {
        /// The category.
        category: String,
        /// Who categorised it.
        categorised_by: String,
    },
    /// The incident was given a priority.
    IncidentPrioritised {
        /// The priority.
        priority: String,
        /// Who prioritised it.
        prioritised_by: String,
    },
    /// An agent was assigned to the incident.
    AgentAssignedToIncident {
        /// The agent's id.
        agent_id: String,
    },
    /// The incident was resolved.
    IncidentResolved {
        /// How it was resolved.
        resolution: String,
        /// Who resolved it.
        resolved_by: String,
    },
    /// The customer acknowledged the resolution.
    ResolutionAcknowledgedByCustomer {
        /// Who acknowledged it.
        acknowledged_by: String,
    },
    /// The incident was closed.
    IncidentClosed {
        /// Who closed it.
        closed_by: String,
    },
    /// The incident was found to duplicate another one.
    IncidentDuplicated {
        /// The incident it duplicates.
        other_id: String,
    },
}

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IncidentStatus {
    /// Logged, not resolved yet.
    Pending,
    /// Resolved by an agent.
    Resolved,
    /// The customer acknowledged the resolution.
    ResolutionAcknowledgedByCustomer,
    /// Closed.
    Closed,
}

/// The incident details document: the incident's stream id is its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentDetails {
    /// The incident's id (its stream id).
    pub id: String,
    /// The customer who logged it.
    pub customer_id: String,
    /// Where it stands.
    pub status: IncidentStatus,
    /// Its category, once categorised.
    pub category: Option<String>,
    /// Its priority, once prioritised.
    pub priority: Option<String>,
    /// The assigned agent, once assigned.
    pub agent_id: Option<String>,
    /// The incidents this one duplicates, in event order.
    pub duplicate_ids: Vec<String>,
}

/// The `incident-details` projection, version 2.
#[derive(Debug, Clone, Copy, Default)]
pub struct IncidentDetailsProjection;

impl Projection for IncidentDetailsProjection {
    type Event = IncidentEvent;
    type Doc = IncidentDetails;
    const NAME: &'static str = "incident-details";
    const VERSION: u32 = 2;

    fn create(id: &str, event: &Envelope<IncidentEvent>) -> Option<IncidentDetails> {
        match &event.event {
            IncidentEvent::IncidentLogged { customer_id, .. } => Some(IncidentDetails {
                id: id.to_owned(),
                customer_id: customer_id.clone(),
                status: IncidentStatus::Pending,
                category: None,
                priority: None,
                agent_id: None,
                duplicate_ids: Vec::new(),
            }),
            _ => None,
        }
    }

    fn apply(doc: &mut IncidentDetails, event: &Envelope<IncidentEvent>) {
        match &event.event {
            // Logged twice: the first one stands.
            IncidentEvent::IncidentLogged { .. } => {}
            IncidentEvent::IncidentCategorised { category, .. } => {
                doc.category = Some(category.clone());
            }
            IncidentEvent::IncidentPrioritised { priority, .. } => {
                doc.priority = Some(priority.clone());
            }
            IncidentEvent::AgentAssignedToIncident { agent_id } => {
                doc.agent_id = Some(agent_id.clone());
            }
            IncidentEvent::IncidentResolved { .. } => doc.status = IncidentStatus::Resolved,
            IncidentEvent::ResolutionAcknowledgedByCustomer { .. } => {
                doc.status = IncidentStatus::ResolutionAcknowledgedByCustomer;
            }
            IncidentEvent::IncidentClosed { .. } => doc.status = IncidentStatus::Closed,
            IncidentEvent::IncidentDuplicated { other_id } => {
                doc.duplicate_ids.push(other_id.clone());
            }
        }
    }
}

refract_guest::export_projection!(IncidentDetailsProjection);

#[cfg(test)]
mod tests {
    use refract_guest::testing::given;
    use serde_json::json;

    use super::IncidentDetailsProjection as V2;

    #[test]
    fn duplicates_are_listed_in_event_order_and_other_events_still_apply() {
        let logged =
            json!({"customer_id": "c-1", "contact": {}, "description": "d", "logged_by": "a"});
        let doc = given()
            .event("inc-1", "IncidentLogged", logged)
            .event("inc-1", "IncidentDuplicated", json!({"other_id": "inc-7"}))
            .event(
                "inc-1",
                "IncidentPrioritised",
                json!({"priority": "High", "prioritised_by": "a"}),
            )
            .event("inc-1", "IncidentDuplicated", json!({"other_id": "inc-3"}))
            .doc::<V2>("inc-1")
            .expect("document");
        assert_eq!(doc["duplicate_ids"], json!(["inc-7", "inc-3"]));
        assert_eq!(doc["priority"], "High");
        assert_eq!(doc["status"], "Pending");
    }

    #[test]
    fn version_two_declares_the_new_event_type() {
        let d = refract_guest::describe::<V2>();
        assert_eq!((d.name.as_str(), d.version), ("incident-details", 2));
        assert!(d.event_types.iter().any(|t| t == "IncidentDuplicated"));
    }
}
