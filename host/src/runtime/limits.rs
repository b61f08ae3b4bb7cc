//! The sandbox's limits for one component instance, and the fixed bounds the runtime
//! checks guests' results against. Bottom layer: imports nothing of the runtime.

use std::time::Duration;

/// Resource limits applied to every call into a component.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest linear memory an instance may grow to, in bytes.
    pub memory_bytes: usize,
    /// Wall-clock CPU budget of one call (one page), in milliseconds.
    pub call_timeout_ms: u64,
    /// Largest document a guest may return, in bytes.
    pub max_doc_bytes: usize,
    /// Largest result of one call (all the documents of a page together), in bytes.
    pub max_result_bytes: usize,
    /// Deepest wasm stack a call may use, in bytes (unbounded recursion traps here).
    pub max_stack_bytes: usize,
    /// Most documents one page's `slice` may name; none means 10 per event of the
    /// page size (`page_size`, or the page's length if larger). Event indices are
    /// capped at as many, and at least 10 per event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_docs_per_page: Option<usize>,
    /// Wall-clock budget, in milliseconds, of all of a team's inline projections in
    /// one append together (they run while the store's write lock is held): past it
    /// the append is refused. Each call is also held to `call_timeout_ms`.
    pub inline_budget_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            call_timeout_ms: 10_000,
            max_doc_bytes: 1 << 20,
            max_result_bytes: 64 << 20,
            max_stack_bytes: 1 << 20,
            max_docs_per_page: None,
            inline_budget_ms: 1_000,
        }
    }
}

impl Limits {
    /// The per-call deadline.
    pub fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.call_timeout_ms)
    }

    /// The budget of one append's inline projections together.
    pub fn inline_budget(&self) -> Duration {
        Duration::from_millis(self.inline_budget_ms.max(1))
    }
}

/// The events per page a guest's `slice` caps scale with unless its caller says
/// (`Guest::with_page_size`): the daemon's default page size, pinned equal to it by
/// a unit test in the daemon (the runtime imports nothing of the daemon).
pub const DEFAULT_PAGE_SIZE: usize = 5000;

/// How often the engine's epoch advances: the granularity of call deadlines.
pub(crate) const TICK: Duration = Duration::from_millis(10);
