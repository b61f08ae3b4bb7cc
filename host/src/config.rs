//! The daemon's configuration: one optional TOML file, overridden by CLI flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::runtime::Limits;

/// Default address of the HTTP API.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4300";

/// Everything `refract serve` needs to know.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the database, the deployed components and compiled artifacts live.
    pub data_dir: PathBuf,
    /// The store, when it is not the data directory's SQLite file: a
    /// `postgres://user@host/database` URL (or `sqlite:PATH`).
    pub store: Option<String>,
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Events per page handed to a guest.
    pub page_size: usize,
    /// Bytes of event data and metadata per page (a bigger event goes alone).
    pub page_bytes: usize,
    /// Largest event (data and metadata, in bytes) an append or an emit may carry.
    pub max_event_bytes: usize,
    /// Bytes of documents each projection version keeps cached between pages.
    pub cache_bytes: usize,
    /// The most events one `rebuild?stream=` reads (default 1,000,000): past it,
    /// rebuild the whole version instead.
    pub rebuild_max_events: u64,
    /// Largest outbox message body (bytes): a bigger `send` is the guest's error.
    pub max_outbox_bytes: usize,
    /// How long one outbox delivery (one HTTP request) may take, in milliseconds.
    pub outbox_timeout_ms: u64,
    /// Sandbox limits for every component.
    pub limits: Limits,
    /// What one page of a subscription may emit, unless its team says otherwise.
    pub emits: crate::daemon::EmitBudget,
    /// The teams (`[teams.<name>]`): tokens, permissions, limits, grants. With no
    /// token anywhere, refract runs as the implicit team `default`, without tokens.
    pub teams: std::collections::BTreeMap<String, crate::teams::TeamConfig>,
    /// The admin token (sees and manages every team's components).
    pub admin_token: Option<String>,
    /// Hex SHA-256 of the admin token, instead of the token itself.
    pub admin_token_sha256: Option<String>,
    /// Per-component settings, by component name (`[components.<name>]`).
    pub components: std::collections::BTreeMap<String, ComponentConfig>,
    /// Several nodes on one PostgreSQL store (`[cluster]`).
    pub cluster: ClusterConfig,
    /// Set by `refract serve` once it holds the data directory's lock (no other
    /// process runs on it): not read from the file.
    #[serde(skip)]
    pub data_dir_locked: bool,
}

/// How this daemon takes part among several nodes on one PostgreSQL store.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's id (`--node-id`); by default the host name and process id.
    pub node_id: Option<String>,
    /// How long a lease lives past its last renewal, in milliseconds: a dead
    /// node's agents are taken over this long (plus a third of it) after it died.
    pub lease_ttl_ms: u64,
    /// Records the node and lease token of every agent commit in `lease_commits`
    /// (for tests and investigations; the table grows with every page).
    pub audit_commits: bool,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            node_id: None,
            lease_ttl_ms: crate::store::cluster::DEFAULT_LEASE_TTL.as_millis() as u64,
            audit_commits: false,
        }
    }
}

/// What the config says about one component (all its versions).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComponentConfig {
    /// Values the component reads with `setting(key)` (e.g. a webhook URL).
    pub settings: std::collections::BTreeMap<String, String>,
    /// Attempts of a failing event (or subscription page) before giving up
    /// (default 3).
    pub attempts: Option<u32>,
    /// Giving up means `pause` (the default) or `dead-letter` (record the failing
    /// event and go on after it). Applies to projections and subscriptions.
    pub on_error: crate::daemon::OnError,
    /// A projection's lifecycle (`async`, `live` or `inline`), in place of the one its
    /// component declares.
    pub lifecycle: Option<crate::runtime::Lifecycle>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("refract-data"),
            store: None,
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 4300))),
            page_size: crate::daemon::DEFAULT_PAGE_SIZE,
            page_bytes: crate::store::DEFAULT_PAGE_BYTES,
            max_event_bytes: crate::store::DEFAULT_MAX_EVENT_BYTES,
            cache_bytes: crate::daemon::DEFAULT_CACHE_BYTES,
            rebuild_max_events: crate::daemon::MAX_REBUILD_EVENTS,
            max_outbox_bytes: crate::outbox::DEFAULT_MAX_OUTBOX_BYTES,
            outbox_timeout_ms: crate::outbox::DEFAULT_REQUEST_TIMEOUT.as_millis() as u64,
            limits: Limits::default(),
            emits: Default::default(),
            teams: Default::default(),
            admin_token: None,
            admin_token_sha256: None,
            components: Default::default(),
            cluster: Default::default(),
            data_dir_locked: false,
        }
    }
}

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for a refract config.
    #[error("invalid config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with its place in the file.
        message: String,
    },
}

impl Config {
    /// Reads a TOML config file; missing keys take their defaults.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// The teams and the admin token, checked.
    pub fn teams(&self) -> Result<crate::teams::Teams, String> {
        use sha2::Digest;
        if self.admin_token.is_some() && self.admin_token_sha256.is_some() {
            return Err("give admin_token or admin_token_sha256, not both".into());
        }
        let admin = self
            .admin_token
            .as_ref()
            .map(|t| hex::encode(sha2::Sha256::digest(t.as_bytes())))
            .or_else(|| self.admin_token_sha256.clone());
        for (name, t) in &self.teams {
            if t.appends_per_s == Some(0) {
                return Err(format!(
                    "team {name}: appends_per_s must be at least 1 (leave it out for no limit)"
                ));
            }
            if t.max_instances == Some(0) || t.max_instances.is_some_and(|m| m > 4096) {
                return Err(format!(
                    "team {name}: max_instances must be 1 to 4096 (instances of its \
                     components alive at once)"
                ));
            }
            // The engine's stack limit is one for every team: a team's other value
            // would be accepted and ignored. The default is taken as not given.
            let daemon_stack = self
                .limits
                .max_stack_bytes
                .max(crate::runtime::MIN_STACK_BYTES);
            if let Some(l) = &t.limits
                && l.max_stack_bytes != daemon_stack
                && l.max_stack_bytes != Limits::default().max_stack_bytes
            {
                return Err(format!(
                    "team {name}: limits.max_stack_bytes {} differs from the daemon's {} \
                     ([limits] max_stack_bytes): the wasm stack limit is one for every \
                     team; leave it out of the team's limits",
                    l.max_stack_bytes, daemon_stack
                ));
            }
            if let Some(l) = &t.limits
                && l.memory_bytes > self.limits.memory_bytes
            {
                return Err(format!(
                    "team {name}: limits.memory_bytes {} is above the daemon's \
                     [limits] memory_bytes {} (instances are pooled at that size)",
                    l.memory_bytes, self.limits.memory_bytes
                ));
            }
        }
        crate::config_bounds::check(self)?;
        let teams = crate::teams::Teams::new(self.teams.clone(), admin);
        teams.validate()?;
        Ok(teams)
    }

    /// What a component's config (if any) says a failing event leads to.
    pub fn error_policy(config: Option<&ComponentConfig>) -> crate::daemon::ErrorPolicy {
        crate::daemon::ErrorPolicy {
            attempts: config
                .and_then(|c| c.attempts)
                .unwrap_or(crate::daemon::ErrorPolicy::default().attempts)
                .max(1),
            on_error: config.map(|c| c.on_error).unwrap_or_default(),
        }
    }

    /// The SQLite database file (the store unless `store` names another).
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("refract.db")
    }

    /// Where the store is: `store` if given, else the data directory's SQLite file.
    pub fn location(&self) -> Result<crate::store::Location, crate::store::StoreError> {
        match &self.store {
            Some(url) => crate::store::Location::parse(url),
            None => Ok(crate::store::Location::from(self.database_path())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_file_keeps_defaults_and_unknown_keys_are_named() {
        let c: Config = toml::from_str("page_size = 50\n[limits]\ncall_timeout_ms = 20\n")
            .expect("valid config");
        assert_eq!(c.page_size, 50);
        assert_eq!(c.limits.call_timeout_ms, 20);
        assert_eq!(c.data_dir, PathBuf::from("refract-data"));
        let t: Config = toml::from_str("[teams.default]\noutbound_hosts = [\"127.0.0.1:9000\"]\n")
            .expect("teams");
        assert_eq!(t.teams["default"].outbound_hosts, ["127.0.0.1:9000"]);
        let err = toml::from_str::<Config>("pagesize = 1").expect_err("unknown key");
        assert!(err.to_string().contains("pagesize"), "{err}");
    }
}
