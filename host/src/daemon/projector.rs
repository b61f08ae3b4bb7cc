//! What an agent drives: something that slices and applies pages. The wasm [`Guest`]
//! is the product's; benchmarks plug native code in to measure the sandbox's cost.
//! The store's records are the runtime's [`Event`]s (the crate's one event record):
//! a page read goes to the guest as it is.

use crate::runtime::{
    DocChange, DocInput, Event, Guest, InstanceSlots, RuntimeError, Slice, Slot, Slotted,
};

/// Projects pages of events: which documents each event touches, then their new state.
pub trait PageProjector: Send + 'static {
    /// Which documents each event of the page touches.
    fn slice(&mut self, page: &[Event]) -> Result<Vec<Slice>, RuntimeError>;

    /// The new state of each document, one change per input, in order; `page` is the
    /// page last given to `slice`.
    fn apply(
        &mut self,
        page: &[Event],
        docs: Vec<DocInput>,
    ) -> Result<Vec<DocChange>, RuntimeError>;

    /// Its sandbox's limits: the agent waits out the CPU deadline of a call (plus a
    /// grace) before it gives up on it, and loads at most a result's bytes of
    /// documents for one page.
    fn limits(&self) -> crate::runtime::Limits {
        crate::runtime::Limits::default()
    }

    /// Whether each document is one stream's, named by its id (only that stream's
    /// events touch it): a rebuild of one stream then reads that stream alone.
    fn per_stream(&self) -> bool {
        false
    }

    /// The slots its instances are made under, if they are budgeted: the agent
    /// waits for one before each page.
    fn slots(&self) -> Option<InstanceSlots> {
        None
    }

    /// Gives it the slot the page's instance lives under.
    fn admit(&mut self, _slot: Slot) {}

    /// The page is done: drop the instance and free its slot.
    fn release(&mut self) {}

    /// The documents its last page's calls looked up (taken): a page that looked
    /// up one of its own documents is narrowed.
    fn take_looked_up(&mut self) -> std::collections::HashSet<String> {
        Default::default()
    }
}

impl PageProjector for Guest {
    fn slice(&mut self, page: &[Event]) -> Result<Vec<Slice>, RuntimeError> {
        Guest::slice(self, page)
    }

    fn apply(
        &mut self,
        page: &[Event],
        docs: Vec<DocInput>,
    ) -> Result<Vec<DocChange>, RuntimeError> {
        Guest::apply(self, page, docs)
    }

    fn limits(&self) -> crate::runtime::Limits {
        Guest::limits(self).clone()
    }

    fn per_stream(&self) -> bool {
        Guest::per_stream(self)
    }

    fn slots(&self) -> Option<InstanceSlots> {
        Guest::slots(self)
    }

    fn admit(&mut self, slot: Slot) {
        Slotted::admit(self, slot);
    }

    fn release(&mut self) {
        Slotted::release(self);
    }

    fn take_looked_up(&mut self) -> std::collections::HashSet<String> {
        Guest::take_looked_up(self)
    }
}

#[cfg(test)]
mod tests {
    /// The runtime keeps its own copy of the daemon's default page size (it
    /// imports nothing of the daemon): they must agree.
    #[test]
    fn the_runtime_default_page_size_is_the_daemon_one() {
        assert_eq!(
            crate::runtime::DEFAULT_PAGE_SIZE,
            super::super::DEFAULT_PAGE_SIZE
        );
    }
}
