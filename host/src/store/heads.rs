//! The head and the last sequence of each event type, as this process knows them,
//! with the agents waiting for either: shared by the backends, so an append wakes
//! only the agents of its event types on SQLite and PostgreSQL alike.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock, RwLockWriteGuard, Weak};

use tokio::sync::{Notify, watch};

use super::Position;

/// The head watch and the per-type heads with their watchers.
#[derive(Clone)]
pub(crate) struct Heads {
    head: watch::Sender<Position>,
    types: Arc<RwLock<TypeHeads>>,
}

/// The last sequence of each event type known here; anything at or below `since`
/// (the head when the store opened, or events ordered by another process) is not
/// known by type.
#[derive(Debug, Default)]
pub(crate) struct TypeHeads {
    since: Position,
    last: HashMap<String, Position>,
    /// The agents waiting for events of each type (dropped agents are pruned).
    pub(crate) watchers: HashMap<String, Vec<Weak<Notify>>>,
    /// How many types had watchers after the last full prune.
    pruned_at: usize,
}

impl Heads {
    /// Heads starting at `head`, known by type from there on.
    pub(crate) fn new(head: Position) -> Self {
        let types = TypeHeads {
            since: head,
            ..TypeHeads::default()
        };
        Self {
            head: watch::channel(head).0,
            types: Arc::new(RwLock::new(types)),
        }
    }

    fn write(&self) -> RwLockWriteGuard<'_, TypeHeads> {
        self.types.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The per-type heads, for tests.
    #[cfg(test)]
    pub(crate) fn read(&self) -> std::sync::RwLockReadGuard<'_, TypeHeads> {
        self.types.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The head now.
    pub(crate) fn now(&self) -> Position {
        *self.head.borrow()
    }

    /// A receiver of the head.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Position> {
        self.head.subscribe()
    }

    /// Notes that events of `types` up to `last` are committed, moves the head,
    /// then wakes the watchers of those types (in that order, so whoever wakes sees
    /// the events by type and by head).
    pub(crate) fn committed<'a>(&self, types: impl Iterator<Item = &'a str>, last: Position) {
        let mut woken = Vec::new();
        {
            // Once per type, not per event: an append of 1,000 events of one type
            // notes it and wakes its watchers once.
            let mut seen = HashSet::new();
            let mut heads = self.write();
            for t in types.filter(|t| seen.insert(*t)) {
                match heads.last.get_mut(t) {
                    Some(at) => *at = (*at).max(last),
                    None => {
                        heads.last.insert(t.to_owned(), last);
                    }
                }
                if let Some(list) = heads.watchers.get_mut(t) {
                    list.retain(|w| match w.upgrade() {
                        Some(n) => {
                            woken.push(n);
                            true
                        }
                        None => false,
                    });
                    if list.is_empty() {
                        heads.watchers.remove(t);
                    }
                }
            }
        }
        self.move_head(last);
        for n in woken {
            n.notify_one();
        }
    }

    /// Events up to `last` were ordered elsewhere, of types not known here: every
    /// watcher wakes and reads.
    pub(crate) fn committed_elsewhere(&self, last: Position) {
        let woken: Vec<Arc<Notify>> = {
            let mut heads = self.write();
            if last <= heads.since {
                return;
            }
            heads.since = last;
            heads
                .watchers
                .values()
                .flatten()
                .filter_map(Weak::upgrade)
                .collect()
        };
        self.move_head(last);
        for n in woken {
            n.notify_one();
        }
    }

    /// Moves the head (never back).
    fn move_head(&self, last: Position) {
        self.head.send_if_modified(|h| {
            let moved = *h < last;
            *h = (*h).max(last);
            moved
        });
    }

    /// Registers one watcher of `types` (see [`super::EventStore::watch_types`]).
    pub(crate) fn watcher(&self, types: &[String]) -> Arc<Notify> {
        let notify = Arc::new(Notify::new());
        let mut heads = self.write();
        for t in types {
            let list = heads.watchers.entry(t.clone()).or_default();
            list.retain(|w| w.strong_count() > 0);
            list.push(Arc::downgrade(&notify));
        }
        // Watchers of types never committed since are dropped now and then, so
        // versions deployed and retired without end leave nothing behind.
        if heads.watchers.len() > heads.pruned_at.saturating_mul(2).max(1024) {
            heads.watchers.retain(|_, list| {
                list.retain(|w| w.strong_count() > 0);
                !list.is_empty()
            });
            heads.pruned_at = heads.watchers.len();
        }
        notify
    }

    /// At least the last sequence of any of `types` (see
    /// [`super::EventStore::last_of_types`]).
    pub(crate) fn last_of_types(&self, types: &[String]) -> Position {
        let since = self.types.read().unwrap_or_else(|p| p.into_inner()).since;
        self.last_noted_of_types(types).max(since)
    }

    /// The last sequence of any of `types` noted by type here (0 if none): an event
    /// of those types is committed at that sequence.
    pub(crate) fn last_noted_of_types(&self, types: &[String]) -> Position {
        let heads = self.types.read().unwrap_or_else(|p| p.into_inner());
        let last = types.iter().filter_map(|t| heads.last.get(t)).max();
        last.copied().unwrap_or(0)
    }
}
