//! Lookups (WIT 1.2.0 `host.lookup`): a projection reading its own documents while
//! it slices a page, to route an event by what it already knows (a `UserRenamed` to
//! every group the user's document lists). The runtime only carries the call: where
//! documents come from ([`DocLookup`]) is the caller's (the daemon's agent: the
//! version's documents as they were before the page), and every lookup is bounded in
//! keys per call and bytes per `slice`.

use std::sync::Arc;

/// Most keys one `lookup` call may ask for.
pub const MAX_LOOKUP_KEYS: usize = 1_000;
/// Most bytes of documents the lookups of one `slice` call may bring.
pub const MAX_LOOKUP_BYTES: usize = 16 << 20;

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

/// One `slice` call's lookups: the source and what is left of its byte budget.
pub(crate) struct Lookups {
    pub source: Arc<dyn DocLookup>,
    pub bytes_left: usize,
    /// A failure of the store during the call: the page failed for the host's
    /// reason, whatever the guest made of it.
    pub host_failure: Option<String>,
}

impl Lookups {
    /// Budgets for one `slice` call over `source`.
    pub fn new(source: Arc<dyn DocLookup>) -> Self {
        Self {
            source,
            bytes_left: MAX_LOOKUP_BYTES,
            host_failure: None,
        }
    }

    /// Answers one `lookup` call of keys already joined.
    pub fn answer(&mut self, keys: &[String]) -> Result<Vec<Option<String>>, String> {
        if keys.len() > MAX_LOOKUP_KEYS {
            return Err(format!(
                "lookup: {} keys in one call; the limit is {MAX_LOOKUP_KEYS}",
                keys.len()
            ));
        }
        match self.source.lookup(keys, self.bytes_left) {
            Ok(docs) => {
                let bytes: usize = docs.iter().flatten().map(String::len).sum();
                self.bytes_left = self.bytes_left.saturating_sub(bytes);
                Ok(docs)
            }
            Err(LookupFailure::Refused(m)) => Err(format!("lookup: {m}")),
            Err(LookupFailure::Host(m)) => {
                let message = format!("lookup: the host failed: {m}");
                self.host_failure = Some(message.clone());
                Err(message)
            }
        }
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
        let e = l
            .answer(&keys(MAX_LOOKUP_KEYS + 1))
            .expect_err("too many keys");
        assert!(
            e.contains("1001 keys in one call; the limit is 1000"),
            "{e}"
        );
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
        assert!(e.contains("the host failed: disk on fire"), "{e}");
        assert!(l.host_failure.is_some());
    }
}
