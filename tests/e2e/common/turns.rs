//! Turns between the tests' daemons: tests run in parallel, but a test that measures
//! a bystander's latency under an attack runs its daemon alone, so what it measures
//! is the attack, not another test's daemon on the same two cores. A test's own
//! daemons (a restart) never wait for each other: turns belong to threads, and a
//! test body runs on its own thread.

use std::collections::HashMap;
use std::sync::{Condvar, LazyLock, Mutex, MutexGuard};
use std::thread::ThreadId;

#[derive(Default)]
struct State {
    /// Running daemons per test thread.
    shared: HashMap<ThreadId, usize>,
    /// The thread whose test runs alone.
    alone: Option<ThreadId>,
    /// Tests waiting to run alone (they go before new shared turns).
    waiting: usize,
}

static TURNS: LazyLock<(Mutex<State>, Condvar)> = LazyLock::new(Default::default);

fn lock() -> MutexGuard<'static, State> {
    TURNS.0.lock().unwrap_or_else(|p| p.into_inner())
}

fn wait(s: MutexGuard<'static, State>) -> MutexGuard<'static, State> {
    TURNS.1.wait(s).unwrap_or_else(|p| p.into_inner())
}

/// A daemon's turn; given back when dropped.
pub enum Turn {
    /// Beside other tests' daemons.
    Shared(ThreadId),
    /// Alone (no other test's daemon runs).
    Alone(ThreadId),
    /// Inside its own test's alone turn.
    Within,
}

/// A turn beside other tests' daemons (waits while a test runs alone).
pub fn shared() -> Turn {
    let me = std::thread::current().id();
    let mut s = lock();
    if s.alone == Some(me) {
        return Turn::Within;
    }
    // A test that has a daemon already never waits for another (a restart).
    while !s.shared.contains_key(&me) && (s.alone.is_some() || s.waiting > 0) {
        s = wait(s);
    }
    *s.shared.entry(me).or_default() += 1;
    Turn::Shared(me)
}

/// The turn to run alone: waits until no other test's daemon runs.
pub fn alone() -> Turn {
    let me = std::thread::current().id();
    let mut s = lock();
    if s.alone == Some(me) {
        return Turn::Within;
    }
    s.waiting += 1;
    while s.alone.is_some() || s.shared.keys().any(|t| *t != me) {
        s = wait(s);
    }
    s.waiting -= 1;
    s.alone = Some(me);
    Turn::Alone(me)
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut s = lock();
        match self {
            Turn::Shared(t) => {
                if let Some(n) = s.shared.get_mut(t) {
                    *n -= 1;
                    if *n == 0 {
                        s.shared.remove(t);
                    }
                }
            }
            Turn::Alone(_) => s.alone = None,
            Turn::Within => return,
        }
        TURNS.1.notify_all();
    }
}
