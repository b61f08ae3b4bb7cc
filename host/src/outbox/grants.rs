//! What each team's outbox may reach: its granted hosts (`host`, `host:port`, an IP,
//! `ip:port`, `[v6]:port`), checked when a message is queued and again when it is
//! delivered, and the largest message body.
//!
//! A grant with a port allows exactly that port. A grant without one allows only the
//! scheme's own port: 80 for `http`, 443 for `https` (so `hooks.example.com` never
//! reaches `hooks.example.com:6379`).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use super::guard;

/// Largest outbox message body by default (1 MiB).
pub const DEFAULT_MAX_OUTBOX_BYTES: usize = 1 << 20;
/// Bytes of messages (bodies, URLs, keys) one subscription page may queue: the host
/// holds them until the page commits (the HTTP append limit; at least one message).
pub const PAGE_OUTBOX_BYTES: usize = 32 << 20;
/// Longest message URL.
pub const MAX_URL_BYTES: usize = 8 << 10;

/// The hosts each team's components may deliver to, by team name (a team not listed
/// may reach nothing), refract's own listen address (never reached) and the largest
/// body a message may carry.
#[derive(Debug, Clone)]
pub struct Grants {
    hosts: BTreeMap<String, Vec<String>>,
    listen: Option<SocketAddr>,
    max_body_bytes: usize,
}

impl Default for Grants {
    fn default() -> Self {
        Self::new(BTreeMap::new())
    }
}

/// A grant's host (lowercase; an IP in its canonical form) and port, if it gives one.
fn parse_grant(grant: &str) -> Result<(String, Option<u16>), String> {
    let g = grant.trim();
    if let Ok(ip) = g.parse::<IpAddr>() {
        return Ok((ip.to_string(), None));
    }
    if let Ok(sa) = g.parse::<SocketAddr>() {
        return Ok((sa.ip().to_string(), Some(sa.port())));
    }
    if let Some(inner) = g.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        let ip: IpAddr = inner
            .parse()
            .map_err(|_| format!("{grant:?}: {inner:?} is not an IPv6 address"))?;
        return Ok((ip.to_string(), None));
    }
    let (host, port) = match g.rsplit_once(':') {
        Some((h, p)) => {
            let port = p
                .parse::<u16>()
                .map_err(|_| format!("{grant:?}: the port {p:?} is not a number up to 65535"))?;
            (h, Some(port))
        }
        None => (g, None),
    };
    if host.is_empty() || host.contains(['/', '@', ' ', '[', ']']) {
        return Err(format!("{grant:?} is not a host or host:port"));
    }
    Ok((host.to_ascii_lowercase(), port))
}

impl Grants {
    /// Grants from each team's `outbound_hosts`, with the default body limit.
    pub fn new(hosts: BTreeMap<String, Vec<String>>) -> Self {
        Self {
            hosts,
            listen: None,
            max_body_bytes: DEFAULT_MAX_OUTBOX_BYTES,
        }
    }

    /// refract's own listen address, which no message ever reaches.
    pub fn with_listen(mut self, listen: SocketAddr) -> Self {
        self.listen = Some(listen);
        self
    }

    /// The largest message body, in bytes.
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// refract's own listen address, if known.
    pub fn listen(&self) -> Option<SocketAddr> {
        self.listen
    }

    /// Checks every grant parses, naming the team and grant that does not.
    pub fn validate(&self) -> Result<(), String> {
        for (team, hosts) in &self.hosts {
            for g in hosts {
                parse_grant(g).map_err(|e| {
                    format!("team {team}: outbound_hosts: {e} (give host or host:port)")
                })?;
            }
        }
        Ok(())
    }

    /// Why a body of `len` bytes is not sent, or `None` when it may be.
    pub fn body_refusal(&self, len: usize) -> Option<String> {
        (len > self.max_body_bytes).then(|| {
            format!(
                "the message body is {len} bytes, over the limit of {} bytes \
                 (config: max_outbox_bytes)",
                self.max_body_bytes
            )
        })
    }

    /// Why a page's messages may not take `total` bytes, or `None` when they may.
    pub fn page_refusal(&self, total: usize) -> Option<String> {
        let budget = PAGE_OUTBOX_BYTES.max(self.max_body_bytes.saturating_add(4096));
        (total > budget).then(|| {
            format!(
                "this page's messages would take {total} bytes, over the budget of \
                 {budget} bytes per page: handle fewer events per page \
                 (Subscription::MAX_PAGE_SIZE)"
            )
        })
    }

    /// Why `team` may not send to `url`, or `None` when it may. A granted name is
    /// checked again when it is resolved (see [`guard`]).
    pub fn refusal(&self, team: &str, url: &str) -> Option<String> {
        if url.len() > MAX_URL_BYTES {
            return Some(format!(
                "the URL is {} bytes, over the limit of {MAX_URL_BYTES}",
                url.len()
            ));
        }
        let parsed = match reqwest::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => u,
            Ok(u) => return Some(format!("{url}: scheme {} is not http or https", u.scheme())),
            Err(e) => return Some(format!("{url:?} is not a URL: {e}")),
        };
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Some(format!("{url}: credentials in the URL are not sent"));
        }
        let Some(raw) = parsed.host_str() else {
            return Some(format!("{url} has no host"));
        };
        let bare = raw.trim_start_matches('[').trim_end_matches(']');
        let ip = bare.parse::<IpAddr>().ok();
        let host = ip.map_or_else(|| bare.to_ascii_lowercase(), |ip| ip.to_string());
        let port = parsed.port_or_known_default().unwrap_or(0);
        let scheme_port = parsed.port().is_none();
        let granted = self.hosts.get(team).is_some_and(|grants| {
            grants.iter().any(|g| match parse_grant(g) {
                Ok((h, Some(p))) => h == host && p == port,
                Ok((h, None)) => h == host && scheme_port,
                Err(_) => false,
            })
        });
        if !granted {
            let shown = match ip {
                Some(IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
                _ => format!("{host}:{port}"),
            };
            return Some(format!(
                "host {shown} is not granted to team {team} (config: [teams.{team}] \
                 outbound_hosts; a grant without a port allows only port 80 for http \
                 and 443 for https)"
            ));
        }
        // An IP named in a grant is the operator's choice; only refract itself is not.
        ip.and_then(|ip| guard::literal_refusal(ip, port, self.listen))
    }
}
