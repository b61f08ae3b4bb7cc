//! Which addresses the outbox may connect to. A granted *name* may resolve to
//! anything its owner likes (an internal address, refract itself), so every address
//! a name resolves to is checked when the connection is made, by the resolver the
//! HTTP client connects through: nothing is resolved twice, so nothing can change in
//! between. Only a grant that names an IP literally reaches a loopback, private or
//! link-local address, and refract's own listen address is never reached.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why the outbox never connects to `ip` through a name, or `None` when it may.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => forbidden_v4(v4).or_else(|| forbidden_v6(v6)),
            None => forbidden_v6(v6),
        },
    }
}

/// The IPv4 address an IPv6 one carries to an IPv4 host: mapped (`::ffff:a.b.c.d`),
/// compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`, `64:ff9b:1::/48`) and 6to4
/// (`2002:a.b.c.d::/16`). Each is judged as that IPv4 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    match s {
        [0, 0, 0, 0, 0, 0, hi, lo] if (hi, lo) != (0, 0) && (hi, lo) != (0, 1) => {
            Some(tail(hi, lo))
        }
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(tail(hi, lo)),
        [0x64, 0xff9b, 1, ..] => Some(tail(s[6], s[7])),
        [0x2002, hi, lo, ..] => Some(tail(hi, lo)),
        _ => None,
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some("unspecified (0.0.0.0/8)")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private (RFC 1918)")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_broadcast() {
        Some("broadcast")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared address space (RFC 6598)")
    } else if a == 192 && b == 0 && ip.octets()[2] == 0 {
        Some("IETF protocol assignments (192.0.0.0/24)")
    } else if a == 198 && (18..20).contains(&b) {
        Some("benchmarking (198.18.0.0/15)")
    } else if a >= 240 {
        Some("reserved (240.0.0.0/4)")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if first & 0xfe00 == 0xfc00 {
        Some("unique local (ULA)")
    } else if first & 0xffc0 == 0xfec0 {
        Some("site-local (deprecated)")
    } else {
        None
    }
}

/// Whether `target` is refract's own API (`listen`): the same port on its address,
/// on a loopback address, or on any address when it listens on all of them.
pub fn is_own(target: SocketAddr, listen: Option<SocketAddr>) -> bool {
    let Some(listen) = listen else { return false };
    let ip = unmapped(target.ip());
    target.port() == listen.port()
        && (ip == unmapped(listen.ip()) || ip.is_loopback() || listen.ip().is_unspecified())
}

/// Why the outbox never connects to the IP `ip` on `port` when a grant names that
/// IP literally: only refract's own API.
pub fn literal_refusal(ip: IpAddr, port: u16, listen: Option<SocketAddr>) -> Option<String> {
    is_own(SocketAddr::new(ip, port), listen)
        .then(|| format!("{ip}:{port} is refract's own API (listen = {listen:?})"))
}

fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The outbox's resolver: the system's, keeping only the addresses [`forbidden`]
/// lets through (and never refract's own listen IP), failing when none is left.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    /// refract's listen address: its IP is refused unless it is unspecified.
    pub listen: Option<SocketAddr>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let listen = self.listen;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (allowed, refused) = screen(&found, listen);
            if allowed.is_empty() {
                let why = if refused.is_empty() {
                    "no address".to_owned()
                } else {
                    refused.join(", ")
                };
                return Err(format!(
                    "{host} resolves to {why}: the outbox reaches such addresses only \
                     through a grant that names the IP itself"
                )
                .into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// The addresses a name may connect to, and a description of each one refused.
pub fn screen(found: &[SocketAddr], listen: Option<SocketAddr>) -> (Vec<SocketAddr>, Vec<String>) {
    let own_ip = listen
        .map(|l| unmapped(l.ip()))
        .filter(|ip| !ip.is_unspecified());
    let mut allowed = Vec::new();
    let mut refused = Vec::new();
    for a in found {
        let ip = unmapped(a.ip());
        if let Some(why) = forbidden(ip) {
            refused.push(format!("{ip} ({why})"));
        } else if own_ip == Some(ip) {
            refused.push(format!("{ip} (refract's own listen address)"));
        } else {
            allowed.push(*a);
        }
    }
    (allowed, refused)
}
