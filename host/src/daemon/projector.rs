//! What an agent drives: something that slices and applies pages. The wasm [`Guest`]
//! is the product's; benchmarks plug native code in to measure the sandbox's cost.

use crate::runtime::{DocChange, DocInput, Guest, RuntimeError, Slice};
use crate::store::RecordedEvent;

/// Projects pages of events: which documents each event touches, then their new state.
pub trait PageProjector: Send + 'static {
    /// Which documents each event of the page touches.
    fn slice(&mut self, page: &[RecordedEvent]) -> Result<Vec<Slice>, RuntimeError>;

    /// The new state of each document, one change per input, in order; `page` is the
    /// page last given to `slice`.
    fn apply(
        &mut self,
        page: &[RecordedEvent],
        docs: Vec<DocInput>,
    ) -> Result<Vec<DocChange>, RuntimeError>;

    /// The CPU deadline of one of its calls, which the host's watchdog waits out
    /// (plus a grace) before it gives up on a call.
    fn call_timeout(&self) -> std::time::Duration {
        crate::runtime::Limits::default().call_timeout()
    }
}

impl PageProjector for Guest {
    fn slice(&mut self, page: &[RecordedEvent]) -> Result<Vec<Slice>, RuntimeError> {
        Guest::slice(self, page)
    }

    fn apply(
        &mut self,
        page: &[RecordedEvent],
        docs: Vec<DocInput>,
    ) -> Result<Vec<DocChange>, RuntimeError> {
        Guest::apply(self, page, docs)
    }

    fn call_timeout(&self) -> std::time::Duration {
        self.limits().call_timeout()
    }
}
