//! Teams: who may call the API and what their components may do. Each team has an
//! API token (or its SHA-256), permissions on events, limits and grants; an admin
//! token sees every team. A component belongs to the team that deployed it, and its
//! name lives in that team's namespace: internally `<team>.<name>` (the implicit
//! `default` team keeps bare names), so two teams may both have an `incident-details`
//! and neither can see, read or touch the other's.
//!
//! With no token configured at all, refract runs as the single implicit team
//! `default` and asks for no token: the quickstart needs no setup.

mod access;
mod per_team;

use std::collections::BTreeMap;

pub use access::{StreamAccess, Streams};
pub(crate) use per_team::PerTeam;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::runtime::Limits;

pub use crate::identity::{DEFAULT_TEAM, qualified, split, team_of};

/// One team in the config (`[teams.<name>]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TeamConfig {
    /// The team's API token (prefer `token_sha256` in files others can read).
    pub token: Option<String>,
    /// Hex SHA-256 of the team's API token.
    pub token_sha256: Option<String>,
    /// Hosts its components' outbox may deliver to: `host` or `host:port`.
    pub outbound_hosts: Vec<String>,
    /// May it append events at all (`false` overrides `append_streams`).
    pub append: bool,
    /// May it read streams (events) directly at all: `GET /streams`, the aggregate
    /// route and `read-stream` (`false` overrides `read_streams` for those; its
    /// components are still fed the streams `read_streams` allows).
    pub read_events: bool,
    /// Globs of the streams it may append to, over HTTP or by `emit` (`*` is any
    /// run of characters; default every stream).
    pub append_streams: Option<Vec<String>>,
    /// Globs of the streams it may read and its components are fed (default every
    /// stream).
    pub read_streams: Option<Vec<String>>,
    /// The tenants its appends may name (default any well-formed tenant).
    pub tenants: Option<Vec<String>>,
    /// The most components (versions not retired) it may have deployed.
    pub max_components: Option<usize>,
    /// Sandbox limits of its components (default: the daemon's `[limits]`).
    pub limits: Option<Limits>,
    /// Its subscriptions' emit budget per page (default: the daemon's `[emits]`).
    pub emits: Option<crate::daemon::EmitBudget>,
    /// Events per second it may append, by HTTP and by its subscriptions' emits
    /// together (default: unlimited).
    pub appends_per_s: Option<u32>,
    /// Most request-driven guest calls (aggregate and consistent reads) of its
    /// components at once; more are refused at once with 503 `busy`.
    pub max_concurrent_calls: usize,
    /// Reads waiting with `after=` (read your writes) at once; more are refused at
    /// once with 503 `busy`.
    pub max_waiting_reads: usize,
    /// Instances of its components alive at once (pages, reads), default 64: its
    /// share of the pool, and so of memory (`max_instances` × `limits.memory_bytes`).
    pub max_instances: Option<usize>,
}

/// Request-driven guest calls a team may have running at once by default.
pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 8;

impl Default for TeamConfig {
    fn default() -> Self {
        Self {
            token: None,
            token_sha256: None,
            outbound_hosts: Vec::new(),
            append: true,
            read_events: true,
            append_streams: None,
            read_streams: None,
            tenants: None,
            max_components: None,
            limits: None,
            emits: None,
            appends_per_s: None,
            max_concurrent_calls: DEFAULT_MAX_CONCURRENT_CALLS,
            max_waiting_reads: crate::service::DEFAULT_WAITING_READS,
            max_instances: None,
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The admin token: every team's components, by their internal names.
    Admin,
    /// A team's token (or anyone, when no tokens are configured).
    Team(String),
}

/// Why a request was not let in.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("this API needs a token: send `Authorization: Bearer <token>`")]
    Missing,
    /// A token that belongs to no one.
    #[error("the token is not valid")]
    Invalid,
}

/// The configured teams and the admin token.
#[derive(Debug, Clone, Default)]
pub struct Teams {
    teams: BTreeMap<String, TeamConfig>,
    admin_sha256: Option<String>,
}

impl Teams {
    /// Teams from the config; `admin` is the admin token's hex SHA-256, if any.
    pub fn new(teams: BTreeMap<String, TeamConfig>, admin_sha256: Option<String>) -> Self {
        Self {
            teams,
            admin_sha256: admin_sha256.map(|h| h.to_ascii_lowercase()),
        }
    }

    /// Whether more than one team is configured (so teams share the daemon).
    pub fn shared(&self) -> bool {
        self.teams.len() > 1
    }

    /// Checks names, and that no two tokens are the same.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = BTreeMap::new();
        if let Some(a) = &self.admin_sha256 {
            seen.insert(a.clone(), "the admin token".to_owned());
        }
        for (name, t) in &self.teams {
            crate::identity::check_team_name(name)?;
            if t.token.is_some() && t.token_sha256.is_some() {
                return Err(format!("team {name}: give token or token_sha256, not both"));
            }
            let field = |f: &str| format!("[teams.{name}] {f}");
            access::check_patterns(
                &field("append_streams"),
                t.append_streams.as_deref().unwrap_or_default(),
            )?;
            access::check_patterns(
                &field("read_streams"),
                t.read_streams.as_deref().unwrap_or_default(),
            )?;
            for tenant in t.tenants.iter().flatten() {
                crate::identity::check_tenant(tenant)
                    .map_err(|e| format!("{}: {e}", field("tenants")))?;
            }
            if let Some(h) = token_hash(t)
                && let Some(other) = seen.insert(h, format!("team {name}"))
            {
                return Err(format!("team {name} has the same token as {other}"));
            }
        }
        Ok(())
    }

    /// Whether the API asks for tokens (some token is configured).
    pub fn auth_enabled(&self) -> bool {
        self.admin_sha256.is_some() || self.teams.values().any(|t| token_hash(t).is_some())
    }

    /// Who the `Authorization` header value says the caller is.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, AuthError> {
        if !self.auth_enabled() {
            return Ok(Caller::Team(DEFAULT_TEAM.to_owned()));
        }
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        let hash = hex::encode(Sha256::digest(token.as_bytes()));
        if self.admin_sha256.as_deref() == Some(hash.as_str()) {
            return Ok(Caller::Admin);
        }
        self.teams
            .iter()
            .find(|(_, t)| token_hash(t).as_deref() == Some(hash.as_str()))
            .map(|(name, _)| Caller::Team(name.clone()))
            .ok_or(AuthError::Invalid)
    }

    /// The instances `team`'s components may hold at once.
    pub fn max_instances(&self, team: &str) -> usize {
        self.teams
            .get(team)
            .and_then(|t| t.max_instances)
            .unwrap_or(crate::runtime::DEFAULT_TEAM_INSTANCES)
            .max(1)
    }

    /// Instances the shared pool must hold: every team's slots at once (the
    /// implicit `default` team's too), plus those kept for `describe`.
    pub fn pool_instances(&self) -> usize {
        let listed: usize = self.teams.keys().map(|t| self.max_instances(t)).sum();
        let default = if self.teams.contains_key(DEFAULT_TEAM) {
            0
        } else {
            self.max_instances(DEFAULT_TEAM)
        };
        listed + default + crate::runtime::DESCRIBE_SLOTS
    }

    /// A team's config (the defaults for a team not listed, like `default`).
    pub fn team(&self, name: &str) -> TeamConfig {
        self.teams.get(name).cloned().unwrap_or_default()
    }

    /// What `team` may do with streams and tenants (everything for a team that is
    /// not listed, like the implicit `default`).
    pub fn access(&self, team: &str) -> StreamAccess {
        let Some(t) = self.teams.get(team) else {
            return StreamAccess::everything();
        };
        let globs = |allowed: bool, patterns: &Option<Vec<String>>| match (allowed, patterns) {
            (false, _) => Streams::none(),
            (true, None) => Streams::all(),
            (true, Some(p)) => Streams::of(p),
        };
        StreamAccess {
            append: globs(t.append, &t.append_streams),
            read: globs(true, &t.read_streams),
            read_direct: t.read_events,
            tenants: t.tenants.as_deref().map(Into::into),
        }
    }

    /// What a caller may do with streams (the admin: everything).
    pub fn access_of(&self, caller: &Caller) -> StreamAccess {
        match caller {
            Caller::Admin => StreamAccess::everything(),
            Caller::Team(t) => self.access(t),
        }
    }

    /// The append rate of every team that has one.
    pub fn append_rates(&self) -> crate::rate::AppendRates {
        crate::rate::AppendRates::new(
            self.teams
                .iter()
                .filter_map(|(n, t)| Some((n.clone(), t.appends_per_s?)))
                .collect(),
        )
    }

    /// The configured teams' names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.teams.keys().map(String::as_str)
    }

    /// Every team's outbound hosts, for the outbox.
    pub fn outbound_hosts(&self) -> BTreeMap<String, Vec<String>> {
        self.teams
            .iter()
            .map(|(n, t)| (n.clone(), t.outbound_hosts.clone()))
            .collect()
    }
}

fn token_hash(t: &TeamConfig) -> Option<String> {
    match (&t.token, &t.token_sha256) {
        (Some(token), _) => Some(hex::encode(Sha256::digest(token.as_bytes()))),
        (None, Some(h)) => Some(h.to_ascii_lowercase()),
        (None, None) => None,
    }
}

impl Caller {
    /// The internal name of what the caller calls `name` (the admin uses internal
    /// names as they are).
    pub fn qualify(&self, name: &str) -> String {
        match self {
            Self::Admin => name.to_owned(),
            // Component names have no dot, so a dotted name is never the caller's:
            // kept under its team it names nothing (`default` would otherwise pass
            // `ops.x` through as another team's component).
            Self::Team(t) if name.contains('.') => format!("{t}.{name}"),
            Self::Team(t) => qualified(t, name),
        }
    }

    /// The internal name of what the caller calls `name`, refusing a `.` from any
    /// caller but the admin: component names never hold one, so such a name can
    /// only be an attempt at another team's namespace. The refusal reads the same
    /// whether or not such a component exists.
    pub fn resolve(&self, name: &str) -> Result<String, String> {
        match self {
            Self::Team(_) if name.contains('.') => Err(format!(
                "{name:?}: component names never hold a '.', and a team reaches only its \
                 own components by their plain names"
            )),
            _ => Ok(self.qualify(name)),
        }
    }

    /// The name the caller knows an internal name by, if it may see it at all.
    pub fn sees<'a>(&self, internal: &'a str) -> Option<&'a str> {
        match self {
            Self::Admin => Some(internal),
            Self::Team(t) => {
                let (team, name) = split(internal);
                (team == t).then_some(name)
            }
        }
    }

    /// The team a deploy by this caller goes to.
    pub fn team(&self) -> &str {
        match self {
            Self::Admin => DEFAULT_TEAM,
            Self::Team(t) => t,
        }
    }
}

#[cfg(test)]
mod tests;
