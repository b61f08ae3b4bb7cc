//! The status of deployed versions as `GET /projections` shows it: registry state,
//! progress, lag, outbox, dead letters and counters.

use serde::Serialize;

use super::{CandidateStatus, Refract, STATUS_DEAD_LETTERS, ServiceError};
use crate::daemon::PauseError;
use crate::deploy::VersionState;
use crate::runtime::{Lifecycle, Loaded};
use crate::store::{Components, Position, ProjectionKey, RunStatus};

/// One projection version as `GET /projections` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectionStatus {
    /// The projection's name.
    pub name: String,
    /// Its version.
    pub version: u32,
    /// Lifecycle state (`live`, ...).
    pub state: String,
    /// `running` or `paused`.
    pub status: RunStatus,
    /// Everything up to this sequence is projected.
    pub position: Position,
    /// The store's last sequence when this was read.
    pub head: Position,
    /// How many sequence numbers it is behind.
    pub lag: i64,
    /// Events applied so far.
    pub events_applied: u64,
    /// Events of types it does not handle, passed over so far.
    pub events_skipped: u64,
    /// Share of the store's events it has passed, 0 to 100.
    pub percent_caught_up: f64,
    /// The event types it handles.
    pub event_types: Vec<String>,
    /// Why it is paused, if it is.
    pub error: Option<PauseError>,
    /// `projection` or `subscription`.
    pub kind: String,
    /// A projection's lifecycle: `async` (projected in the background, stored) or
    /// `live` (folded from its stream on every read: always at the head).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<crate::runtime::Lifecycle>,
    /// The named collections it keeps besides its default one (WIT 1.2.0), when
    /// loaded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub collections: Vec<String>,
    /// A subscription's emits and sends dropped while it caught up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effects_held: Option<u64>,
    /// A subscription's outbox: pending, delivered and failed messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbox: Option<crate::store::subscription::OutboxCounts>,
    /// How many events the version gave up on (policy dead-letter).
    pub dead_letter_count: u64,
    /// The first [`STATUS_DEAD_LETTERS`] of them, oldest first, with their errors
    /// (all of them: `GET /projections/{name}/versions/{v}/dead-letters`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letters: Option<Vec<crate::store::subscription::DeadLetter>>,
    /// The WIT version (of `refract:projection`, or of `refract:subscription`) it was
    /// built against (none if retired).
    pub wit: Option<crate::runtime::WitVersion>,
    /// Events per page it gets: the configured size or the guest's smaller maximum.
    pub page_size: Option<usize>,
    /// Counters since the daemon started: guest time, pages, events, errors, limit
    /// hits (none if it has not run since).
    pub metrics: Option<crate::daemon::Metrics>,
    /// A candidate build of this version (same-version reload or rebuild), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate: Option<CandidateStatus>,
    /// An open transaction in the database holding committed events back from
    /// every version (they are read when it ends): not stuck, waiting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<crate::store::OrderHold>,
    /// The node running its agent, with several nodes on one store (none while
    /// no node holds its lease).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

impl Refract {
    /// Every deployed version of `team` (every team's for `None`) whose (internal)
    /// name is `visible`, with its progress; nothing is read for the others.
    pub async fn projections(
        &self,
        team: Option<&str>,
        visible: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Vec<ProjectionStatus>, ServiceError> {
        let which = team.map_or(Components::All, Components::Team);
        // Progress first, the head after: every event committed before a version's
        // progress was read is then at or below the head shown (an emit committed
        // with that progress included), so a version is never shown caught up while
        // its own emits wait to be read.
        let mut read = Vec::new();
        for rec in self.store.components_where(which).await? {
            if !visible(&rec.key.name) {
                continue;
            }
            let state = VersionState::parse(&rec.state);
            let mut p = match state {
                // A retired version's progress went with its documents.
                VersionState::Retired => crate::store::Progress {
                    position: 0,
                    events_applied: 0,
                    events_skipped: 0,
                    effects_held: 0,
                    status: RunStatus::Paused,
                    error: None,
                    doc_set: None,
                },
                _ => self.store.progress(&rec.key).await?,
            };
            if state != VersionState::Retired {
                // Events of other types passed over are stored later; shown now.
                p.position = p.position.max(self.daemon.known_position(&rec.key));
            }
            read.push((rec, state, p));
        }
        // Committed events not yet ordered (PostgreSQL) are past the head: counted
        // in it, so the lag includes them.
        let (ordered, unordered) = self.store.head_and_unordered().await?;
        let head = ordered + unordered as Position;
        let held = match unordered {
            0 => None,
            _ => self.store.order_held().await?,
        };
        let keys: Vec<ProjectionKey> = read.iter().map(|(rec, _, _)| rec.key.clone()).collect();
        let mut nodes = self.lease_holders(&keys).await;
        let mut out = Vec::new();
        for (rec, state, mut p) in read {
            if state != VersionState::Retired {
                // An idle agent is woken only by events of its own types: with none
                // after its position up to the head this process knows by type (read
                // first: types are noted before that head moves), it is there.
                let known = *self.store.watch_head().borrow();
                let nothing_new = self
                    .store
                    .last_of_types(&rec.event_types)
                    .is_some_and(|last| last <= p.position);
                if nothing_new && p.status == RunStatus::Running && self.daemon.is_running(&rec.key)
                {
                    p.position = p.position.max(known.min(ordered));
                }
            }
            let lifecycle = match rec.kind.as_str() {
                "projection" => Some(self.lifecycle_of(&rec.key)),
                _ => None,
            };
            if lifecycle == Some(Lifecycle::Live) && state != VersionState::Retired {
                // Every ordered event is in its next read.
                p.position = ordered;
            }
            // Read before the head: never shown past it.
            p.position = p.position.min(head);
            let lag = (head - p.position).max(0);
            let error = p.error.as_deref().map(|text| {
                serde_json::from_str(text).unwrap_or_else(|_| PauseError {
                    component: rec.key.to_string(),
                    event_sequence: None,
                    message: text.to_owned(),
                    fault: crate::runtime::Fault::Host,
                })
            });
            let outbox = match rec.kind.as_str() {
                "subscription" => Some(self.store.outbox_counts(&rec.key).await?),
                _ => None,
            };
            let dead_letter_count = self.store.dead_letter_count(&rec.key).await?;
            let dead_letters = match dead_letter_count {
                0 => Vec::new(),
                _ => {
                    let first = self
                        .store
                        .dead_letter_page(&rec.key, 0, STATUS_DEAD_LETTERS);
                    first.await?
                }
            };
            let mut collections = Vec::new();
            let running = match self.loaded_components().get(&rec.key) {
                Some(Loaded::Projection(l)) => {
                    let d = &l.descriptor;
                    collections.clone_from(&d.collections);
                    Some((d.wit_version, self.daemon.page_size_for(d)))
                }
                Some(Loaded::Subscription(l)) => {
                    let d = &l.descriptor;
                    Some((d.wit_version, d.page_size(self.daemon.page_size())))
                }
                None => None,
            };
            let metrics = self.daemon.metrics(&rec.key);
            let candidate = self.candidate_status(&rec.key, head).await?;
            let node = nodes.remove(&rec.key);
            out.push(ProjectionStatus {
                name: rec.key.name,
                version: rec.key.version,
                state: state.shown(lag).to_owned(),
                status: p.status,
                position: p.position,
                head,
                lag,
                events_applied: p.events_applied,
                events_skipped: p.events_skipped,
                percent_caught_up: if head == 0 {
                    100.0
                } else {
                    (p.position as f64 * 1000.0 / head as f64).round() / 10.0
                },
                event_types: rec.event_types,
                error,
                effects_held: (rec.kind == "subscription").then_some(p.effects_held),
                outbox,
                dead_letter_count,
                dead_letters: Some(dead_letters),
                kind: rec.kind,
                lifecycle,
                collections,
                metrics,
                wit: running.map(|(wit, _)| wit),
                page_size: running.map(|(_, size)| size),
                candidate,
                waiting_for: held.clone(),
                node,
            });
        }
        Ok(out)
    }
}
