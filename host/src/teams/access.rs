//! Which streams a team may append to and read, and which tenants its appends may
//! name: glob patterns from its config, checked on every path an event takes (the
//! HTTP routes, a subscription's `emit` and `read-stream`, aggregates, and the pages
//! a team's components are fed).

use std::sync::Arc;

/// Longest stream pattern accepted in a team's config, in bytes.
const MAX_PATTERN_LEN: usize = 256;

/// A set of stream-name globs: `*` stands for any run of characters (none
/// included), every other character for itself. `None` matches every stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Streams(Option<Arc<[String]>>);

impl Streams {
    /// Every stream.
    pub fn all() -> Self {
        Self(None)
    }

    /// No stream at all.
    pub fn none() -> Self {
        Self(Some(Arc::from(Vec::new())))
    }

    /// The streams matching any of `patterns` (`["*"]` is every stream).
    pub fn of(patterns: &[String]) -> Self {
        if patterns.iter().any(|p| p == "*") {
            return Self::all();
        }
        Self(Some(patterns.into()))
    }

    /// Whether every stream matches (nothing needs checking).
    pub fn is_all(&self) -> bool {
        self.0.is_none()
    }

    /// Whether `stream` matches one of the patterns.
    pub fn matches(&self, stream: &str) -> bool {
        match &self.0 {
            None => true,
            Some(ps) => ps.iter().any(|p| glob(p.as_bytes(), stream.as_bytes())),
        }
    }
}

/// What one team may do with streams and tenants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamAccess {
    /// Streams it may append to (HTTP and `emit`).
    pub append: Streams,
    /// Streams whose events its components are fed (projections, subscriptions,
    /// aggregates).
    pub read: Streams,
    /// Whether it may read events directly (`GET /streams`, `read-stream`, the
    /// aggregate route), always within `read`.
    pub read_direct: bool,
    /// The tenants its appends may name (any valid one if `None`).
    pub tenants: Option<Arc<[String]>>,
}

impl StreamAccess {
    /// Access to everything: the implicit single team, and the admin.
    pub fn everything() -> Self {
        Self {
            append: Streams::all(),
            read: Streams::all(),
            read_direct: true,
            tenants: None,
        }
    }

    /// Whether it may append to `stream`.
    pub fn may_append(&self, stream: &str) -> bool {
        self.append.matches(stream)
    }

    /// Whether it may read `stream`'s events directly.
    pub fn may_read(&self, stream: &str) -> bool {
        self.read_direct && self.read.matches(stream)
    }

    /// Whether its components may be fed `stream`'s events.
    pub fn may_feed(&self, stream: &str) -> bool {
        self.read.matches(stream)
    }

    /// Checks a tenant named by an append: its form, and that the team lists it.
    pub fn check_tenant(&self, tenant: &str) -> Result<(), String> {
        crate::identity::check_tenant(tenant)?;
        match &self.tenants {
            Some(list) if !list.iter().any(|t| t == tenant) => Err(format!(
                "tenant {tenant:?} is not one of this team's tenants (config: tenants)"
            )),
            _ => Ok(()),
        }
    }
}

/// Checks a team's stream patterns (`what` names the config field).
pub fn check_patterns(what: &str, patterns: &[String]) -> Result<(), String> {
    for p in patterns {
        if !crate::identity::is_text(p, MAX_PATTERN_LEN) {
            return Err(format!(
                "{what}: pattern {p:?} must be 1 to {MAX_PATTERN_LEN} characters without \
                 control characters"
            ));
        }
    }
    Ok(())
}

/// Whether `text` matches `pattern`, `*` matching any run of bytes. Greedy with one
/// backtrack point: linear in practice, never exponential.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_prefixes_suffixes_and_literals() {
        let s = Streams::of(&["orders-*".into(), "*-audit".into(), "exact".into()]);
        assert!(s.matches("orders-1"));
        assert!(s.matches("orders-"));
        assert!(s.matches("x-audit"));
        assert!(s.matches("exact"));
        assert!(!s.matches("exact2"));
        assert!(!s.matches("order-1"));
        assert!(!s.matches("ops-orders-1"));
        assert!(Streams::of(&["a*b*c".into()]).matches("aXbYbZc"));
        assert!(!Streams::of(&["a*b*c".into()]).matches("aXbYbZ"));
        assert!(Streams::of(&["*".into()]).is_all());
        assert!(!Streams::none().matches("anything"));
        assert!(Streams::all().matches("anything"));
    }

    #[test]
    fn tenants_are_checked_for_form_and_membership() {
        let open = StreamAccess::everything();
        assert!(open.check_tenant("acme.eu-1_x").is_ok());
        let e = open.check_tenant("").unwrap_err();
        assert!(e.contains("1 to 64"), "{e}");
        let e = open.check_tenant(&"a".repeat(65)).unwrap_err();
        assert!(e.contains("65 bytes"), "{e}");
        let e = open.check_tenant("a b").unwrap_err();
        assert!(e.contains("' '"), "{e}");
        let e = open.check_tenant("a\nERROR").unwrap_err();
        assert!(!e.contains('\n'), "{e}");
        let listed = StreamAccess {
            tenants: Some(Arc::from(vec!["acme".to_owned()])),
            ..StreamAccess::everything()
        };
        assert!(listed.check_tenant("acme").is_ok());
        let e = listed.check_tenant("globex").unwrap_err();
        assert!(e.contains("not one of this team's tenants"), "{e}");
    }

    #[test]
    fn direct_reads_need_read_events_and_a_matching_pattern() {
        let a = StreamAccess {
            read: Streams::of(&["orders-*".into()]),
            read_direct: false,
            ..StreamAccess::everything()
        };
        assert!(a.may_feed("orders-1"));
        assert!(!a.may_read("orders-1"));
        assert!(!a.may_feed("payroll-1"));
        assert!(check_patterns("append_streams", &["".into()]).is_err());
    }
}
