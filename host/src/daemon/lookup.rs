//! Lookups answered from the store: a version's documents as committed, read from
//! the guest's blocking thread (the guest waits for them, as a subscription's
//! `read-stream` does). Its agent settles each commit before a lookup page's
//! `slice`, so committed is everything before the page.

use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;

use crate::runtime::lookup::{DocLookup, LookupFailure};
use crate::store::{ProjectionKey, Store};

/// How long one lookup may wait for the store before it is the host's failure.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

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
        let ids: Vec<&str> = keys.iter().map(String::as_str).collect();
        let read = self.store.load_docs_within(&self.key, &ids, max_bytes);
        match self
            .runtime
            .block_on(tokio::time::timeout(LOOKUP_TIMEOUT, read))
        {
            Ok(Ok(Some(found))) => Ok(keys.iter().map(|k| found.get(k).cloned()).collect()),
            Ok(Ok(None)) => Err(LookupFailure::Refused(format!(
                "the documents asked for are over the {max_bytes} bytes left to this \
                 slice's lookups"
            ))),
            Ok(Err(e)) => Err(LookupFailure::Host(e.to_string())),
            Err(_) => Err(LookupFailure::Host(format!(
                "the store did not answer within {LOOKUP_TIMEOUT:?}"
            ))),
        }
    }
}
