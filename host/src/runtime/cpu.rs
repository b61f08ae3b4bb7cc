//! Fair CPU between guests. Every call starts in the fast lane: a page that takes a
//! few milliseconds never waits for anything. A call still running after
//! [`SHORT_TICKS`] becomes *long* and from then on runs only while it holds one of
//! the long lane's slots (the machine's cores less one), giving its slot up at every
//! tick to the long call that waited longest. So however many guests spin (loops up
//! to their deadline, a flood of slow requests), one core stays free for short pages,
//! the API and the store, and a call's CPU deadline counts the ticks it ran, not the
//! ticks it waited its turn.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};

/// Ticks (of `engine::TICK`) a call runs before it joins the long lane.
pub(crate) const SHORT_TICKS: u64 = 2;

/// The process's long lane.
static LANE: LazyLock<Arc<Lane>> = LazyLock::new(|| Arc::new(Lane::new(all_cores_but_one())));

/// Compilations of uploaded components: one at a time per slot, each on one thread,
/// so a team uploading big components cannot take every core either.
static COMPILES: LazyLock<Lane> = LazyLock::new(|| Lane::new(all_cores_but_one()));

/// Slots of a lane: the machine's cores less one (at least one), so one core is
/// always left to short work.
fn all_cores_but_one() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.saturating_sub(1).max(1)
}

/// Runs `f` (a compilation) in the compile lane, waiting for a slot first come,
/// first served.
pub(crate) fn compiling<T>(f: impl FnOnce() -> T) -> T {
    struct Slot;
    impl Drop for Slot {
        fn drop(&mut self) {
            COMPILES.release();
        }
    }
    COMPILES.acquire(&Arc::from(""));
    let _slot = Slot;
    f()
}

/// Slots for long calls, handed out round-robin between teams and first come, first
/// served within a team: a team with many spinning calls gets one turn in each round,
/// as a team with one does.
pub(crate) struct Lane {
    state: Mutex<LaneState>,
    turn: Condvar,
    slots: usize,
}

#[derive(Default)]
struct LaneState {
    holders: usize,
    next_ticket: u64,
    /// Each team's waiting tickets, in order.
    queues: HashMap<Arc<str>, VecDeque<u64>>,
    /// The teams with waiting tickets, in the order they are served.
    order: VecDeque<Arc<str>>,
}

impl LaneState {
    /// Whether `ticket` of `team` is the next to be served.
    fn next_is(&self, team: &Arc<str>, ticket: u64) -> bool {
        self.order.front() == Some(team)
            && self.queues.get(team).and_then(|q| q.front()) == Some(&ticket)
    }
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

    /// Waits for `team`'s turn and a slot.
    fn acquire(&self, team: &Arc<str>) {
        self.queue(team, false);
    }

    /// Queues for `team`'s turn, giving the slot it holds back at the same moment
    /// (`giving_back`), so it is in line before anyone is served in its place.
    fn queue(&self, team: &Arc<str>, giving_back: bool) {
        let mut s = self.lock();
        if giving_back {
            s.holders = s.holders.saturating_sub(1);
            self.turn.notify_all();
        }
        let ticket = s.next_ticket;
        s.next_ticket += 1;
        let queue = s.queues.entry(team.clone()).or_default();
        queue.push_back(ticket);
        if queue.len() == 1 {
            s.order.push_back(team.clone());
        }
        while !(s.holders < self.slots && s.next_is(team, ticket)) {
            s = self.turn.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        s.order.pop_front();
        let more = match s.queues.get_mut(team) {
            Some(q) => {
                q.pop_front();
                !q.is_empty()
            }
            None => false,
        };
        if more {
            // The team's next call waits for the other teams' turns.
            s.order.push_back(team.clone());
        } else {
            s.queues.remove(team);
        }
        s.holders += 1;
        // The next in line may find a slot free too.
        self.turn.notify_all();
    }

    fn release(&self) {
        let mut s = self.lock();
        s.holders = s.holders.saturating_sub(1);
        self.turn.notify_all();
    }

    /// Gives the slot to the next in line, if anyone waits, and queues again.
    fn share(&self, team: &Arc<str>) {
        if self.lock().order.is_empty() {
            return;
        }
        self.queue(team, true);
    }
}

/// One instance's view of its current call: ticks run, and its long-lane slot.
pub(crate) struct CallClock {
    lane: Arc<Lane>,
    /// Whose turn this call takes in the long lane.
    team: Arc<str>,
    ran: u64,
    budget: u64,
    holding: bool,
}

impl Default for CallClock {
    fn default() -> Self {
        Self {
            lane: LANE.clone(),
            team: Arc::from(""),
            ran: 0,
            budget: u64::MAX,
            holding: false,
        }
    }
}

impl CallClock {
    /// A clock whose long calls take `team`'s turns.
    pub fn for_team(team: &str) -> Self {
        let mut clock = Self::default();
        clock.team = Arc::from(team);
        clock
    }

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
                self.lane.share(&self.team);
            } else {
                self.lane.acquire(&self.team);
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

    fn clock(lane: &Arc<Lane>, team: &str) -> CallClock {
        let mut c = CallClock::for_team(team);
        c.lane = lane.clone();
        c
    }

    #[test]
    fn long_calls_take_turns_within_the_slots_and_short_ones_never_wait() {
        let lane = Arc::new(Lane::new(1));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (lane, running, most) = (lane.clone(), running.clone(), most.clone());
                std::thread::spawn(move || {
                    let mut clock = clock(&lane, "a");
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
        let mut short = clock(&lane, "b");
        short.start(10);
        assert!(short.tick());
        assert!(!short.holding);
        assert_eq!(lane.lock().holders, 0, "every slot given back");
    }

    #[test]
    fn a_team_with_many_long_calls_gets_one_turn_a_round_like_a_team_with_one() {
        let lane = Arc::new(Lane::new(1));
        let turns = Arc::new(Mutex::new(Vec::new()));
        let spawn = |team: &'static str| {
            let (lane, turns) = (lane.clone(), turns.clone());
            std::thread::spawn(move || {
                let mut clock = clock(&lane, team);
                clock.start(30);
                while clock.tick() {
                    if clock.holding {
                        turns.lock().expect("lock").push(team);
                        std::thread::sleep(Duration::from_micros(300));
                    }
                }
            })
        };
        let mut threads: Vec<_> = (0..6).map(|_| spawn("many")).collect();
        std::thread::sleep(Duration::from_millis(5));
        threads.push(spawn("one"));
        for t in threads {
            t.join().expect("thread");
        }
        let turns = turns.lock().expect("lock").clone();
        let first = turns.iter().position(|t| *t == "one").expect("one ran");
        // From its first turn on, until it is done, it gets every other turn.
        let window = &turns[first..first + 40];
        let ones = window.iter().filter(|t| **t == "one").count();
        assert!(ones >= 18, "{ones} of 40 turns: {window:?}");
    }
}
