//! Lookups (WIT 1.2.0 `host.lookup`): a projection reading its own documents while
//! it slices a page, to route an event by what it already knows (a `UserRenamed` to
//! every group the user's document lists). The runtime only carries the call: where
//! documents come from ([`DocLookup`]) is the caller's (the daemon's agent: the
//! version's documents as they were before the page), and every lookup is bounded in
//! keys per call and bytes per `slice`.

use std::sync::Arc;

/// Most keys one `lookup` call may ask for.
pub const MAX_LOOKUP_KEYS: usize = 1_000;
/// Most keys the lookups of one guest call (`slice` or `apply`) may ask for in all
/// (keys of missing documents cost no bytes: they are counted here).
pub const MAX_LOOKUPS_PER_CALL: usize = 10_000;
/// Most bytes of documents the lookups of one guest call may bring.
pub const MAX_LOOKUP_BYTES: usize = 16 << 20;
/// Most wall-clock time the lookups of one guest call may spend waiting for the
/// store: past it the page fails for the host's reason (never the guest's, and
/// never as late as the watchdog's deadline).
pub const MAX_LOOKUP_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// Why a lookup was not answered.
#[derive(Debug, Clone)]
pub enum LookupFailure {
    /// The guest asked for more than a lookup may bring: its error.
    Refused(String),
    /// The store failed: the host's.
    Host(String),
}

/// Where a slicing guest's lookups are answered.
pub trait DocLookup: Send + Sync {
    /// The documents of `keys` (the host's text keys, see
    /// [`crate::identity::doc_key`]), one per key, none for one that does not
    /// exist; refused if together they are over `max_bytes`.
    fn lookup(
        &self,
        keys: &[String],
        max_bytes: usize,
    ) -> Result<Vec<Option<String>>, LookupFailure>;
}

/// One guest call's lookups: the source, what is left of its budgets, and the keys
/// it looked up (a page whose own documents were looked up is narrowed: see
/// [`crate::daemon`]'s agent).
pub(crate) struct Lookups {
    pub source: Arc<dyn DocLookup>,
    pub bytes_left: usize,
    pub keys_left: usize,
    pub time_left: std::time::Duration,
    /// The keys looked up.
    pub looked_up: std::collections::HashSet<String>,
    /// A failure of the store during the call: the page failed for the host's
    /// reason, whatever the guest made of it.
    pub host_failure: Option<String>,
}

impl Lookups {
    /// Budgets for one guest call over `source`.
    pub fn new(source: Arc<dyn DocLookup>) -> Self {
        Self {
            source,
            bytes_left: MAX_LOOKUP_BYTES,
            keys_left: MAX_LOOKUPS_PER_CALL,
            time_left: MAX_LOOKUP_TIME,
            looked_up: Default::default(),
            host_failure: None,
        }
    }

    /// Checks the count of one `lookup` call's keys before they are read further.
    pub fn admit(&mut self, keys: usize) -> Result<(), String> {
        if keys > MAX_LOOKUP_KEYS {
            return Err(format!(
                "lookup: {keys} keys in one call; the limit is {MAX_LOOKUP_KEYS}"
            ));
        }
        if keys > self.keys_left {
            return Err(format!(
                "lookup: more than {MAX_LOOKUPS_PER_CALL} keys looked up in one call of \
                 slice or apply"
            ));
        }
        self.keys_left -= keys;
        Ok(())
    }

    /// Answers one `lookup` call of keys already joined (and admitted).
    pub fn answer(&mut self, keys: &[String]) -> Result<Vec<Option<String>>, String> {
        if self.time_left.is_zero() {
            return Err(self.host_failed(format!(
                "the lookups of one call waited {MAX_LOOKUP_TIME:?} for the store"
            )));
        }
        let started = std::time::Instant::now();
        let answer = self.source.lookup(keys, self.bytes_left);
        self.time_left = self.time_left.saturating_sub(started.elapsed());
        match answer {
            Ok(docs) => {
                let bytes: usize = docs.iter().flatten().map(String::len).sum();
                self.bytes_left = self.bytes_left.saturating_sub(bytes);
                self.looked_up.extend(keys.iter().cloned());
                Ok(docs)
            }
            Err(LookupFailure::Refused(m)) => Err(format!("lookup: {m}")),
            Err(LookupFailure::Host(m)) => Err(self.host_failed(m)),
        }
    }

    /// Remembers a failure of the store as the host's; the guest is told no more
    /// than that (the store's words are for the log).
    fn host_failed(&mut self, m: String) -> String {
        tracing::warn!("a lookup failed: {m}");
        self.host_failure = Some(format!("a lookup failed: {m}"));
        "lookup: the store failed (the page is tried again)".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers every key with a document of `size` bytes, or fails.
    struct Fixed {
        size: usize,
        host_fails: bool,
    }

    impl DocLookup for Fixed {
        fn lookup(
            &self,
            keys: &[String],
            max_bytes: usize,
        ) -> Result<Vec<Option<String>>, LookupFailure> {
            if self.host_fails {
                return Err(LookupFailure::Host("disk on fire".into()));
            }
            if keys.len() * self.size > max_bytes {
                return Err(LookupFailure::Refused("over the bytes left".into()));
            }
            Ok(keys.iter().map(|_| Some("x".repeat(self.size))).collect())
        }
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("k{i}")).collect()
    }

    #[test]
    fn lookups_are_bounded_in_keys_per_call_and_bytes_per_call_of_the_guest() {
        let size = 1 << 20;
        let mut l = Lookups::new(Arc::new(Fixed {
            size,
            host_fails: false,
        }));
        let e = l.admit(MAX_LOOKUP_KEYS + 1).expect_err("too many keys");
        assert!(
            e.contains("1001 keys in one call; the limit is 1000"),
            "{e}"
        );
        for _ in 0..10 {
            l.admit(1_000).expect("within the call's keys");
        }
        let e = l.admit(1).expect_err("past 10,000 keys in one guest call");
        assert!(e.contains("more than 10000 keys"), "{e}");
        // 16 MiB in all: 16 documents of 1 MiB, then a refusal.
        for _ in 0..16 {
            assert_eq!(l.answer(&keys(1)).expect("within the budget").len(), 1);
        }
        let e = l.answer(&keys(1)).expect_err("over the budget");
        assert!(e.starts_with("lookup: over the bytes left"), "{e}");
        assert!(l.host_failure.is_none(), "a refusal is the guest's");
    }

    #[test]
    fn a_store_failure_is_remembered_as_the_hosts() {
        let mut l = Lookups::new(Arc::new(Fixed {
            size: 1,
            host_fails: true,
        }));
        let e = l.answer(&keys(1)).expect_err("fails");
        assert_eq!(e, "lookup: the store failed (the page is tried again)");
        assert!(
            l.host_failure
                .as_deref()
                .is_some_and(|f| f.contains("disk on fire"))
        );
    }
}
