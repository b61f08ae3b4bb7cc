//! The per-team map lives with the teams; the service's budgets name it from here.

pub(super) use crate::teams::PerTeam;
