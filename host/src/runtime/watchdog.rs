//! The host's wall-clock watchdog over guest calls. Guest calls run on blocking
//! threads under an epoch deadline, which fires only while wasm runs: a thread stuck
//! in host code would hold its agent, request or shutdown for good. The async side
//! therefore stops waiting once the current guest call has run past its deadline and
//! a grace, reports the guest's CPU-time error, and marks the call abandoned: when
//! the thread comes back its instance is dropped, never reused. Time a call waits
//! for its turn in the long lane (see `cpu`) is not counted: it is the host's
//! scheduling, not the guest being stuck.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::error::{Limit, RuntimeError};

/// How long past a call's deadline the host waits before it gives up on the call:
/// room for a host import (a store read or write) the call is in.
pub const GRACE: Duration = Duration::from_secs(5);
/// How often the waiting side looks at the running call.
const CHECK: Duration = Duration::from_millis(50);

thread_local! {
    /// The watch of the blocking task this thread runs, if any.
    static CURRENT: std::cell::RefCell<Option<Arc<Watch>>> = const { std::cell::RefCell::new(None) };
}

/// What the waiting side knows of the blocking side.
#[derive(Default)]
struct Watch {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The running call: its component, when it started (or since when the task
    /// has waited to make one) and its deadline.
    running: Option<(String, Instant, Duration)>,
    /// The waiting side gave up: the instance must not be used again.
    abandoned: bool,
    /// The call waits for its turn in the long lane (not stuck: not watched).
    waiting_turn: bool,
}

impl Watch {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Marks the start of a guest call of `component` with `deadline` on this thread.
pub(crate) fn call_started(component: &str, deadline: Duration) {
    with_current(|w| w.lock().running = Some((component.to_owned(), Instant::now(), deadline)));
}

/// Marks that the call on this thread waits for its turn to run (`true`) or runs
/// again (`false`): a wait for the CPU is not a stuck call, and the call's watch
/// starts afresh once it runs.
pub(crate) fn waiting_turn(waiting: bool) {
    with_current(|w| {
        let mut s = w.lock();
        s.waiting_turn = waiting;
        if let Some((_, since, _)) = s.running.as_mut() {
            *since = Instant::now();
        }
    });
}

/// Marks the end of the guest call on this thread; true if the host gave up on it
/// meanwhile (its instance must be dropped).
pub(crate) fn call_ended() -> bool {
    let mut abandoned = false;
    with_current(|w| {
        let mut s = w.lock();
        s.running = None;
        s.waiting_turn = false;
        abandoned = s.abandoned;
    });
    abandoned
}

fn with_current(f: impl FnOnce(&Watch)) {
    CURRENT.with(|c| {
        if let Some(w) = c.borrow().as_ref() {
            f(w);
        }
    });
}

/// Runs `f` (which makes guest calls) on a blocking thread and waits for it while no
/// guest call of it has run past its deadline plus `grace`. With `armed`, the time
/// from when a thread takes it up to the first call counts as a call of `component`
/// under `deadline` too (the task may wait for an instance another stuck call holds);
/// the wait for a blocking thread never does.
pub async fn run_watched<R: Send + 'static>(
    component: &str,
    deadline: Duration,
    grace: Duration,
    armed: bool,
    f: impl FnOnce() -> Result<R, RuntimeError> + Send + 'static,
) -> Result<R, RuntimeError> {
    let watch = Arc::new(Watch::default());
    let theirs = watch.clone();
    let armed = armed.then(|| component.to_owned());
    let mut task = tokio::task::spawn_blocking(move || {
        // Armed once a thread runs it: a wait for a blocking thread is the host's.
        if let Some(component) = armed {
            theirs.lock().running = Some((component, Instant::now(), deadline));
        }
        CURRENT.with(|c| *c.borrow_mut() = Some(theirs.clone()));
        let out = f();
        CURRENT.with(|c| *c.borrow_mut() = None);
        out
    });
    loop {
        tokio::select! {
            joined = &mut task => {
                return joined.unwrap_or_else(|e| {
                    Err(RuntimeError::Host(format!("guest call task of {component}: {e}")))
                });
            }
            () = tokio::time::sleep(CHECK) => {
                let mut s = watch.lock();
                let overdue = s.running.as_ref().filter(|_| !s.waiting_turn).and_then(|(who, since, deadline)| {
                    (since.elapsed() > *deadline + grace).then(|| (who.clone(), *deadline))
                });
                if let Some((who, deadline)) = overdue {
                    s.abandoned = true;
                    return Err(RuntimeError::Guest {
                        component: who,
                        event_sequence: None,
                        message: format!(
                            "{} of {} ms per call (the call did not return; the host \
                             stopped waiting for it after {} ms)",
                            Limit::Cpu.phrase(),
                            deadline.as_millis(),
                            (deadline + grace).as_millis()
                        ),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The deadline of every call in these tests.
    const DEADLINE: Duration = Duration::from_millis(100);

    /// Runs `f` watched as `component`'s, its calls under [`DEADLINE`], given up
    /// `grace_ms` past it.
    async fn watched<R: Send + 'static>(
        component: &str,
        grace_ms: u64,
        armed: bool,
        f: impl FnOnce() -> Result<R, RuntimeError> + Send + 'static,
    ) -> Result<R, RuntimeError> {
        run_watched(
            component,
            DEADLINE,
            Duration::from_millis(grace_ms),
            armed,
            f,
        )
        .await
    }

    #[tokio::test]
    async fn a_call_stuck_on_the_host_side_is_given_up_as_the_guests_timeout() {
        let started = Instant::now();
        let (tx, rx) = std::sync::mpsc::channel::<bool>();
        let err = watched("stuck@v1", 100, false, move || {
            call_started("stuck@v1", DEADLINE);
            // Blocked where no epoch deadline reaches.
            std::thread::sleep(Duration::from_millis(1500));
            let _ = tx.send(call_ended());
            Ok(())
        })
        .await
        .expect_err("given up");
        assert!(started.elapsed() < Duration::from_millis(1000), "{err}");
        assert_eq!(err.limit(), Some(Limit::Cpu), "{err}");
        assert!(err.to_string().contains("stuck@v1"), "{err}");
        let abandoned = tokio::task::spawn_blocking(move || rx.recv().unwrap_or(false))
            .await
            .unwrap_or(false);
        assert!(abandoned, "the thread learns its instance is abandoned");
    }

    #[tokio::test]
    async fn a_call_waiting_for_its_turn_to_run_is_not_given_up() {
        let out = watched("patient@v1", 100, false, || {
            call_started("patient@v1", DEADLINE);
            waiting_turn(true);
            std::thread::sleep(Duration::from_millis(800));
            waiting_turn(false);
            std::thread::sleep(Duration::from_millis(50));
            Ok(call_ended())
        })
        .await;
        assert_eq!(out.ok(), Some(false), "waited for, never abandoned");
    }

    #[tokio::test]
    async fn calls_within_their_deadline_are_waited_for_however_many() {
        let out = watched("fine@v1", 50, true, || {
            for _ in 0..5 {
                call_started("fine@v1", DEADLINE);
                std::thread::sleep(Duration::from_millis(80));
                call_ended();
            }
            Ok(7)
        })
        .await;
        assert_eq!(out.ok(), Some(7));
    }
}
