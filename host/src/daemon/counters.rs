//! Per-version counters since the daemon started: time spent in the guest, pages,
//! events, guest errors and which limits were hit. Shown in `GET /projections`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde::Serialize;

use crate::runtime::{Limit, RuntimeError};

/// The live counters of one version, updated by its agent.
#[derive(Debug, Default)]
pub struct Counters {
    guest_micros: AtomicU64,
    pages: AtomicU64,
    events: AtomicU64,
    errors: AtomicU64,
    cpu_limit: AtomicU64,
    memory_limit: AtomicU64,
    stack_limit: AtomicU64,
    result_limit: AtomicU64,
    /// Projected up to here, beyond the stored progress (0: only the stored).
    position: AtomicI64,
    /// The position of the last commit that landed (0: none since the agent started).
    committed: AtomicI64,
    /// Woken each time a commit lands or the position passed over moves (reads
    /// waiting with `after=`).
    moved: tokio::sync::Notify,
}

/// A copy of a version's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Metrics {
    /// Wall time spent inside the guest's calls, in milliseconds.
    pub guest_ms: u64,
    /// Pages handled.
    pub pages: u64,
    /// Events handled.
    pub events: u64,
    /// Guest failures (each retried or pausing the version).
    pub errors: u64,
    /// Limit hits, by limit.
    pub limit_hits: LimitHits,
}

/// How often each limit stopped the guest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LimitHits {
    /// The CPU deadline of a call.
    pub cpu: u64,
    /// The memory cap.
    pub memory: u64,
    /// The stack limit.
    pub stack: u64,
    /// Result checks (document size, JSON, ids).
    pub result: u64,
}

impl Counters {
    /// Time spent in one guest call.
    pub fn guest_time(&self, d: Duration) {
        self.guest_micros
            .fetch_add(d.as_micros().min(u64::MAX as u128) as u64, Relaxed);
    }

    /// A page handled.
    pub fn page(&self, events: usize) {
        self.pages.fetch_add(1, Relaxed);
        self.events.fetch_add(events as u64, Relaxed);
    }

    /// The version has projected everything up to `p` (0: see the stored progress).
    pub fn set_position(&self, p: i64) {
        self.position.store(p, Relaxed);
        if p > 0 {
            self.moved.notify_waiters();
        }
    }

    /// A commit up to `p` has landed.
    pub fn landed(&self, p: i64) {
        self.committed.fetch_max(p, Relaxed);
        self.moved.notify_waiters();
    }

    /// Forgets what the agent knew (its progress is about to be reset or dropped).
    pub fn forget(&self) {
        self.position.store(0, Relaxed);
        self.committed.store(0, Relaxed);
    }

    /// How far the agent is known to have projected: its last commit that landed,
    /// or the events of other types it passed over after it (0: see the store).
    pub fn projected(&self) -> i64 {
        self.committed
            .load(Relaxed)
            .max(self.position.load(Relaxed))
    }

    /// Completes when a commit lands or the position passed over moves after this
    /// call (register before looking, so nothing is missed in between).
    pub fn moved(&self) -> tokio::sync::futures::Notified<'_> {
        self.moved.notified()
    }

    /// Where the version is known to have projected to (0: see the stored progress).
    pub fn position(&self) -> i64 {
        self.position.load(Relaxed)
    }

    /// A failed guest call, counted by the limit it names.
    pub fn error(&self, e: &RuntimeError) {
        self.errors.fetch_add(1, Relaxed);
        let hit = e.limit().map(|l| match l {
            Limit::Cpu => &self.cpu_limit,
            Limit::Memory => &self.memory_limit,
            Limit::Stack => &self.stack_limit,
            Limit::Result => &self.result_limit,
        });
        if let Some(c) = hit {
            c.fetch_add(1, Relaxed);
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> Metrics {
        Metrics {
            guest_ms: self.guest_micros.load(Relaxed) / 1000,
            pages: self.pages.load(Relaxed),
            events: self.events.load(Relaxed),
            errors: self.errors.load(Relaxed),
            limit_hits: LimitHits {
                cpu: self.cpu_limit.load(Relaxed),
                memory: self.memory_limit.load(Relaxed),
                stack: self.stack_limit.load(Relaxed),
                result: self.result_limit.load(Relaxed),
            },
        }
    }
}
