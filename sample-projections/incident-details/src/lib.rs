//! The help desk's incident details (seed 001), version 1: one document per incident
//! stream with its customer, status, category, priority and assigned agent.
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
}

/// The `incident-details` projection, version 1.
#[derive(Debug, Clone, Copy, Default)]
pub struct IncidentDetailsProjection;

impl Projection for IncidentDetailsProjection {
    type Event = IncidentEvent;
    type Doc = IncidentDetails;
    const NAME: &'static str = "incident-details";
    const VERSION: u32 = 1;

    fn create(id: &str, event: &Envelope<IncidentEvent>) -> Option<IncidentDetails> {
        match &event.event {
            IncidentEvent::IncidentLogged { customer_id, .. } => Some(IncidentDetails {
                id: id.to_owned(),
                customer_id: customer_id.clone(),
                status: IncidentStatus::Pending,
                category: None,
                priority: None,
                agent_id: None,
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
        }
    }
}

refract_guest::export_projection!(IncidentDetailsProjection);

#[cfg(test)]
mod tests;
