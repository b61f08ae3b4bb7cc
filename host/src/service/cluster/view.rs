//! `GET /cluster` and the `node` of each version in `GET /projections`.

use std::collections::HashMap;

use serde::Serialize;

use super::to_run;
use crate::service::{Refract, ServiceError};
use crate::store::ProjectionKey;
use crate::store::cluster::NodeInfo;

/// One node in `GET /cluster`.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterNode {
    /// The node as the store knows it.
    #[serde(flatten)]
    pub info: NodeInfo,
    /// The versions whose leases it holds (the caller's team's only, for a team).
    pub agents: Vec<String>,
}

/// What `GET /cluster` shows.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterView {
    /// The node that answered.
    pub node: String,
    /// Versions to run (not retired): the caller's team's, for a team.
    pub versions: usize,
    /// ⌈versions / live nodes⌉, the most one node runs (for the admin only: it
    /// counts every team's versions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_node_max: Option<usize>,
    /// Every node the store knows (dead ones for an hour).
    pub nodes: Vec<ClusterNode>,
}

impl Refract {
    /// The cluster as the store knows it, with the agents each node holds (only
    /// `team`'s, unless `None`: the admin); `None` without a cluster.
    pub async fn cluster_view(
        &self,
        team: Option<&str>,
    ) -> Result<Option<ClusterView>, ServiceError> {
        let Some(c) = self.store.cluster() else {
            return Ok(None);
        };
        let Some(node) = c.node() else {
            return Ok(None);
        };
        let nodes = c.nodes().await?;
        let leases = c.leases().await?;
        let which = team.map_or(
            crate::store::Components::All,
            crate::store::Components::Team,
        );
        let versions = self
            .store
            .components_where(which)
            .await?
            .iter()
            .filter(|r| to_run(r))
            .count();
        let alive = nodes.iter().filter(|n| n.alive).count().max(1);
        let nodes = nodes
            .into_iter()
            .map(|mut info| {
                if team.is_some() {
                    // Where nodes listen is the operator's business.
                    info.addr = None;
                }
                let agents = leases
                    .iter()
                    .filter(|l| l.node_id == info.node_id && l.expires_in_ms > 0)
                    .filter(|l| team.is_none_or(|t| crate::teams::team_of(&l.key.name) == t))
                    .map(|l| l.key.to_string())
                    .collect();
                ClusterNode { info, agents }
            })
            .collect();
        Ok(Some(ClusterView {
            node,
            versions,
            per_node_max: team.is_none().then(|| versions.div_ceil(alive)),
            nodes,
        }))
    }

    /// The node holding each of `keys`' leases (unexpired), on a shared store.
    pub(in crate::service) async fn lease_holders(
        &self,
        keys: &[ProjectionKey],
    ) -> HashMap<ProjectionKey, String> {
        let Some(c) = self.store.cluster() else {
            return HashMap::new();
        };
        match c.holders(keys).await {
            Ok(leases) => leases
                .into_iter()
                .filter(|l| l.expires_in_ms > 0)
                .map(|l| (l.key, l.node_id))
                .collect(),
            Err(e) => {
                tracing::warn!("reading leases: {e}");
                HashMap::new()
            }
        }
    }
}
