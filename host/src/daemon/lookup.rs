//! Lookups answered from the store: a version's documents as committed, read from
//! the guest's blocking thread (the guest waits for them, as a subscription's
//! `read-stream` does). Its agent settles each commit before a lookup page's
//! `slice`, so committed is everything before the page.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;

use crate::runtime::lookup::{DocLookup, LookupFailure};
use crate::store::{ProjectionKey, Store};

/// How long one lookup may wait for the store before it is the host's failure.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(1);

/// The documents of one version, read from the store.
pub(crate) struct StoreLookup {
    store: Arc<dyn Store>,
    key: ProjectionKey,
    runtime: Handle,
}

impl StoreLookup {
    /// Lookups of `key`'s documents, as a source for a guest; from within the runtime.
    pub fn source(store: Arc<dyn Store>, key: ProjectionKey) -> Arc<dyn DocLookup> {
        Arc::new(Self {
            store,
            key,
            runtime: Handle::current(),
        })
    }
}

impl DocLookup for StoreLookup {
    fn lookup(
        &self,
        keys: &[String],
        max_bytes: usize,
    ) -> Result<Vec<Option<String>>, LookupFailure> {
        // Each document once, however often it is asked for.
        let mut ids: Vec<&str> = keys.iter().map(String::as_str).collect();
        ids.sort_unstable();
        ids.dedup();
        let over = || {
            LookupFailure::Refused(format!(
                "the documents asked for are over the {max_bytes} bytes left to this \
                 call's lookups"
            ))
        };
        let read = self.store.load_docs_within(&self.key, &ids, max_bytes);
        match self
            .runtime
            .block_on(tokio::time::timeout(LOOKUP_TIMEOUT, read))
        {
            Ok(Ok(Some(found))) => {
                // A key asked for twice brings its document twice: counted so,
                // before anything is copied.
                let total = keys
                    .iter()
                    .map(|k| found.get(k).map_or(0, String::len))
                    .fold(0usize, usize::saturating_add);
                if total > max_bytes {
                    return Err(over());
                }
                Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
            }
            Ok(Ok(None)) => Err(over()),
            Ok(Err(e)) => Err(LookupFailure::Host(e.to_string())),
            Err(_) => Err(LookupFailure::Host(format!(
                "the store did not answer within {LOOKUP_TIMEOUT:?}"
            ))),
        }
    }
}

/// Documents by key (`None`: deleted).
pub(crate) type Documents = HashMap<String, Option<String>>;

/// Lookups of an inline version: the append's earlier events first, then the
/// documents committed before the append.
pub(crate) struct StateFirst {
    /// The documents the calls so far left.
    pub seen: Arc<std::sync::Mutex<Documents>>,
    /// The rest.
    pub store: Arc<dyn DocLookup>,
}

impl DocLookup for StateFirst {
    fn lookup(
        &self,
        keys: &[String],
        max_bytes: usize,
    ) -> Result<Vec<Option<String>>, LookupFailure> {
        let known: Vec<Option<Option<String>>> = {
            let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            keys.iter().map(|k| seen.get(k).cloned()).collect()
        };
        let missing: Vec<String> = keys
            .iter()
            .zip(&known)
            .filter(|(_, k)| k.is_none())
            .map(|(key, _)| key.clone())
            .collect();
        let mut stored = match missing.is_empty() {
            true => Vec::new(),
            false => self.store.lookup(&missing, max_bytes)?,
        }
        .into_iter();
        let out: Vec<Option<String>> = known
            .into_iter()
            .map(|k| k.unwrap_or_else(|| stored.next().flatten()))
            .collect();
        let total = out
            .iter()
            .flatten()
            .map(String::len)
            .fold(0usize, usize::saturating_add);
        if total > max_bytes {
            return Err(LookupFailure::Refused(format!(
                "the documents asked for are over the {max_bytes} bytes left to this call's \
                 lookups"
            )));
        }
        Ok(out)
    }
}
