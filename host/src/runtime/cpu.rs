//! Fair CPU between guests. Every call starts in the fast lane: a page that takes a
//! few milliseconds never waits for anything. A call still running after
//! [`SHORT_TICKS`] becomes *long* and from then on runs only while it holds one of
//! the long lane's slots (the machine's cores less one), giving its slot up at every
//! tick to the long call that waited longest. So however many guests spin (loops up
//! to their deadline, a flood of slow requests), one core stays free for short pages,
//! the API and the store, and a call's CPU deadline counts the ticks it ran, not the
//! ticks it waited its turn.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};

/// Ticks (of `engine::TICK`) a call runs before it joins the long lane.
pub(crate) const SHORT_TICKS: u64 = 2;

/// The process's long lane.
static LANE: LazyLock<Arc<Lane>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Arc::new(Lane::new(cores.saturating_sub(1).max(1)))
});

/// Compilations of uploaded components: one at a time per slot, each on one thread,
/// so a team uploading big components cannot take every core either.
static COMPILES: LazyLock<Lane> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Lane::new(cores.saturating_sub(1).max(1))
});

/// Runs `f` (a compilation) in the compile lane, waiting for a slot first come,
/// first served.
pub(crate) fn compiling<T>(f: impl FnOnce() -> T) -> T {
    struct Slot;
    impl Drop for Slot {
        fn drop(&mut self) {
            COMPILES.release();
        }
    }
    COMPILES.acquire();
    let _slot = Slot;
    f()
}

/// Slots for long calls, handed out first come, first served.
pub(crate) struct Lane {
    state: Mutex<LaneState>,
    turn: Condvar,
    slots: usize,
}

#[derive(Default)]
struct LaneState {
    holders: usize,
    next_ticket: u64,
    waiting: VecDeque<u64>,
}

impl Lane {
    fn new(slots: usize) -> Self {
        Self {
            state: Mutex::default(),
            turn: Condvar::new(),
            slots,
        }
    }

    fn lock(&self) -> MutexGuard<'_, LaneState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits in line for a slot.
    fn acquire(&self) {
        let mut s = self.lock();
        let ticket = s.next_ticket;
        s.next_ticket += 1;
        s.waiting.push_back(ticket);
        while !(s.holders < self.slots && s.waiting.front() == Some(&ticket)) {
            s = self.turn.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        s.waiting.pop_front();
        s.holders += 1;
        // The next in line may find a slot free too.
        self.turn.notify_all();
    }

    fn release(&self) {
        let mut s = self.lock();
        s.holders = s.holders.saturating_sub(1);
        self.turn.notify_all();
    }

    /// Gives the slot to the first in line, if anyone waits, and queues again.
    fn share(&self) {
        if self.lock().waiting.is_empty() {
            return;
        }
        self.release();
        self.acquire();
    }
}

/// One instance's view of its current call: ticks run, and its long-lane slot.
pub(crate) struct CallClock {
    lane: Arc<Lane>,
    ran: u64,
    budget: u64,
    holding: bool,
}

impl Default for CallClock {
    fn default() -> Self {
        Self {
            lane: LANE.clone(),
            ran: 0,
            budget: u64::MAX,
            holding: false,
        }
    }
}

impl CallClock {
    /// A new call with a budget of `budget` ticks of running.
    pub fn start(&mut self, budget: u64) {
        self.end();
        self.ran = 0;
        self.budget = budget.max(1);
    }

    /// One tick passed while the call ran: false once its budget is spent. A long
    /// call takes (or shares) a slot before it runs on, which may block this thread.
    pub fn tick(&mut self) -> bool {
        self.ran += 1;
        if self.ran >= self.budget {
            self.end();
            return false;
        }
        if self.ran >= SHORT_TICKS {
            // Waiting for its turn is not the guest being stuck: the host's
            // watchdog looks away meanwhile.
            super::watchdog::waiting_turn(true);
            if self.holding {
                self.lane.share();
            } else {
                self.lane.acquire();
                self.holding = true;
            }
            super::watchdog::waiting_turn(false);
        }
        true
    }

    /// The call is over: its slot (if any) goes to the next in line.
    pub fn end(&mut self) {
        if std::mem::take(&mut self.holding) {
            self.lane.release();
        }
    }
}

impl Drop for CallClock {
    fn drop(&mut self) {
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn long_calls_take_turns_within_the_slots_and_short_ones_never_wait() {
        let lane = Arc::new(Lane::new(1));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (lane, running, most) = (lane.clone(), running.clone(), most.clone());
                std::thread::spawn(move || {
                    let mut clock = CallClock {
                        lane,
                        ran: 0,
                        budget: u64::MAX,
                        holding: false,
                    };
                    clock.start(40);
                    let mut ticks = 0;
                    while clock.tick() {
                        if clock.holding {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_micros(200));
                            running.fetch_sub(1, Ordering::SeqCst);
                        }
                        ticks += 1;
                    }
                    ticks
                })
            })
            .collect();
        for t in threads {
            // Each ran its whole budget of ticks, waiting excluded.
            assert_eq!(t.join().expect("thread"), 39);
        }
        assert_eq!(most.load(Ordering::SeqCst), 1, "one long call at a time");
        // A short call never touched the lane.
        let mut short = CallClock {
            lane: lane.clone(),
            ran: 0,
            budget: 10,
            holding: false,
        };
        short.start(10);
        assert!(short.tick());
        assert!(!short.holding);
        assert_eq!(lane.lock().holders, 0, "every slot given back");
    }
}
