//! Teams: who may call the API and what their components may do. Each team has an
//! API token (or its SHA-256), permissions on events, limits and grants; an admin
//! token sees every team. A component belongs to the team that deployed it, and its
//! name lives in that team's namespace: internally `<team>.<name>` (the implicit
//! `default` team keeps bare names), so two teams may both have an `incident-details`
//! and neither can see, read or touch the other's.
//!
//! With no token configured at all, refract runs as the single implicit team
//! `default` and asks for no token: the quickstart needs no setup.

use std::collections::BTreeMap;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::runtime::Limits;

/// The team of every component when no teams are configured.
pub const DEFAULT_TEAM: &str = "default";

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
    /// May it append events.
    pub append: bool,
    /// May it read streams (events) directly.
    pub read_events: bool,
    /// The most components (versions not retired) it may have deployed.
    pub max_components: Option<usize>,
    /// Sandbox limits of its components (default: the daemon's `[limits]`).
    pub limits: Option<Limits>,
    /// Instances of its components alive at once (pages, reads), default 64: its
    /// share of the pool, and so of memory (`max_instances` × `limits.memory_bytes`).
    pub max_instances: Option<usize>,
}

impl Default for TeamConfig {
    fn default() -> Self {
        Self {
            token: None,
            token_sha256: None,
            outbound_hosts: Vec::new(),
            append: true,
            read_events: true,
            max_components: None,
            limits: None,
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

    /// Checks names, and that no two tokens are the same.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = BTreeMap::new();
        if let Some(a) = &self.admin_sha256 {
            seen.insert(a.clone(), "the admin token".to_owned());
        }
        for (name, t) in &self.teams {
            let ok = !name.is_empty()
                && name.len() <= 32
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !ok {
                return Err(format!(
                    "team name {name:?} must be 1 to 32 of a-z, 0-9, '-' and '_'"
                ));
            }
            if t.token.is_some() && t.token_sha256.is_some() {
                return Err(format!("team {name}: give token or token_sha256, not both"));
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

/// The internal name of `team`'s component `name`.
pub fn qualified(team: &str, name: &str) -> String {
    if team == DEFAULT_TEAM {
        name.to_owned()
    } else {
        format!("{team}.{name}")
    }
}

/// The team an internal name belongs to, and the name the team knows it by.
pub fn split(internal: &str) -> (&str, &str) {
    internal.split_once('.').unwrap_or((DEFAULT_TEAM, internal))
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
mod tests {
    use super::*;

    fn teams() -> Teams {
        let a = TeamConfig {
            token: Some("token-a".into()),
            ..TeamConfig::default()
        };
        let b = TeamConfig {
            token_sha256: Some(hex::encode(Sha256::digest(b"token-b"))),
            append: false,
            ..TeamConfig::default()
        };
        Teams::new(
            BTreeMap::from([("a".into(), a), ("b".into(), b)]),
            Some(hex::encode(Sha256::digest(b"root"))),
        )
    }

    #[test]
    fn a_dotted_name_never_reaches_another_team() {
        let default = Caller::Team(DEFAULT_TEAM.into());
        assert_eq!(default.qualify("incident-details"), "incident-details");
        let probe = default.qualify("ops.incident-details");
        assert_ne!(probe, "ops.incident-details");
        assert_eq!(split(&probe).0, DEFAULT_TEAM, "{probe}");
        let a = Caller::Team("a".into());
        assert_eq!(a.qualify("x"), "a.x");
        assert_eq!(split(&a.qualify("b.x")).0, "a");
        assert_eq!(Caller::Admin.qualify("ops.x"), "ops.x");
    }

    #[test]
    fn tokens_name_their_team_and_nothing_else_gets_in() {
        let t = teams();
        assert_eq!(
            t.authenticate(Some("Bearer token-a")),
            Ok(Caller::Team("a".into()))
        );
        assert_eq!(
            t.authenticate(Some("Bearer token-b")),
            Ok(Caller::Team("b".into()))
        );
        assert_eq!(t.authenticate(Some("Bearer root")), Ok(Caller::Admin));
        assert_eq!(t.authenticate(Some("Bearer nope")), Err(AuthError::Invalid));
        assert_eq!(t.authenticate(Some("token-a")), Err(AuthError::Missing));
        assert_eq!(t.authenticate(None), Err(AuthError::Missing));
        let open = Teams::default();
        assert_eq!(
            open.authenticate(None),
            Ok(Caller::Team(DEFAULT_TEAM.into()))
        );
    }

    #[test]
    fn names_live_in_their_team_namespace() {
        let a = Caller::Team("a".into());
        assert_eq!(a.qualify("incident-details"), "a.incident-details");
        assert_eq!(a.sees("a.incident-details"), Some("incident-details"));
        assert_eq!(a.sees("b.incident-details"), None);
        assert_eq!(a.sees("incident-details"), None, "the default team's");
        let d = Caller::Team(DEFAULT_TEAM.into());
        assert_eq!(d.qualify("x"), "x");
        assert_eq!(Caller::Admin.sees("b.x"), Some("b.x"));
    }

    #[test]
    fn bad_team_configs_are_named() {
        let same = TeamConfig {
            token: Some("root".into()),
            ..TeamConfig::default()
        };
        let t = Teams::new(
            BTreeMap::from([("c".into(), same)]),
            Some(hex::encode(Sha256::digest(b"root"))),
        );
        assert!(t.validate().unwrap_err().contains("same token"));
        let bad = Teams::new(
            BTreeMap::from([("Ops!".into(), TeamConfig::default())]),
            None,
        );
        assert!(bad.validate().unwrap_err().contains("Ops!"));
    }
}
