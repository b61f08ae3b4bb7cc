//! Delivers the outbox after commit: each message is POSTed as JSON to its URL, with
//! its stable id in the `Refract-Message-Id` header, retried with backoff until a 2xx
//! answer (at least once; receivers deduplicate on the id) or the last attempt.
//!
//! The outbox cannot be turned against the host: only hosts (and ports) granted to
//! the queuing component's team are reached ([`grants`]); redirects are never
//! followed (a 3xx is a failed attempt, its `Location` logged); a granted name is
//! checked again at connect time, so it cannot lead to loopback, private or
//! link-local addresses or to refract itself ([`guard`]); bodies are capped.
//!
//! Each team's messages are delivered by a task of their own, one at a time, so a
//! team whose receiver never answers delays only its own messages. At shutdown a
//! delivery in flight is abandoned: its row stays pending and is sent after restart.

pub mod grants;
pub mod guard;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub use grants::{DEFAULT_MAX_OUTBOX_BYTES, Grants};

use crate::store::subscription::OutboxMessage;
use crate::store::{Store, StoreError, now_micros};

/// Header carrying the message's stable id.
pub const MESSAGE_ID_HEADER: &str = "refract-message-id";
/// How long one delivery may take by default (config `outbox_timeout_ms`).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts before a message is given up on (and shown as failed).
const MAX_ATTEMPTS: u32 = 12;
/// Wait before the first retry; doubled each time up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How often an idle worker looks for retries that came due.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// Messages a team's task reads at once.
const TEAM_BATCH: usize = 16;
/// How long shutdown waits for team tasks to notice it before aborting them.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// Most bytes of a `Location` header quoted in the log.
const MAX_LOCATION_SHOWN: usize = 512;

/// The delivery worker's handle: wake it when messages were committed.
#[derive(Clone, Default)]
pub struct OutboxWaker(Arc<Notify>);

impl OutboxWaker {
    /// Tells the worker that new messages may be due.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// The HTTP client every delivery goes through: no redirects, no proxy, names
/// resolved through the [`guard::GuardedResolver`], `timeout` per request.
pub fn client(grants: &Grants, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .dns_resolver(Arc::new(guard::GuardedResolver {
            listen: grants.listen(),
        }))
        .build()
        .unwrap_or_default()
}

/// Runs the delivery worker until `shutdown` turns true: one task per team with due
/// messages, started when the team has none running.
pub fn spawn(
    store: Arc<dyn Store>,
    grants: Grants,
    timeout: Duration,
    waker: OutboxWaker,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let http = client(&grants, timeout);
        let grants = Arc::new(grants);
        let mut teams: HashMap<String, JoinHandle<()>> = HashMap::new();
        while !*shutdown.borrow() {
            teams.retain(|_, task| !task.is_finished());
            match store.due_teams(now_micros()).await {
                Ok(due) => {
                    for team in due {
                        if teams.contains_key(&team) {
                            continue;
                        }
                        let task = tokio::spawn(deliver_team(
                            store.clone(),
                            grants.clone(),
                            http.clone(),
                            team.clone(),
                            shutdown.clone(),
                        ));
                        teams.insert(team, task);
                    }
                }
                Err(e) => tracing::warn!("outbox: {e}"),
            }
            tokio::select! {
                _ = waker.0.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = shutdown.changed() => {}
            }
        }
        // Each task stops at its next step when told; one stuck in the store is
        // aborted (its message stays pending).
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        for (_, mut task) in teams {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
            }
        }
    })
}

/// Delivers `team`'s due messages one at a time until none is due or shutdown.
async fn deliver_team(
    store: Arc<dyn Store>,
    grants: Arc<Grants>,
    http: reqwest::Client,
    team: String,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let pass = deliver_pass(store.as_ref(), &grants, &http, &team);
        tokio::select! {
            r = pass => match r {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(team = %team, "outbox: {e}");
                    return;
                }
            },
            // Abandoned mid-delivery: the row is untouched, so it is sent again later.
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// One pass over up to a batch of `team`'s due messages; returns how many were
/// attempted.
pub async fn deliver_pass(
    store: &dyn Store,
    grants: &Grants,
    http: &reqwest::Client,
    team: &str,
) -> Result<usize, StoreError> {
    let due = store
        .due_team_messages(team, now_micros(), TEAM_BATCH)
        .await?;
    for m in &due {
        let refused = grants
            .refusal(&m.team, &m.url)
            .or_else(|| grants.body_refusal(m.body.len()));
        if let Some(why) = refused {
            tracing::warn!(message = %m.id, subscription = %m.subscription, "outbox: not sent: {why}");
            store.message_failed(m.seq, &why, None).await?;
            continue;
        }
        match post(http, m).await {
            Ok(()) => store.message_delivered(m.seq).await?,
            Err(why) => {
                let attempts = m.attempts + 1;
                let retry_at =
                    (attempts < MAX_ATTEMPTS).then(|| now_micros() + backoff_micros(attempts));
                tracing::warn!(
                    message = %m.id,
                    subscription = %m.subscription,
                    attempts,
                    "outbox: delivery failed{}: {why}",
                    if retry_at.is_some() { ", will retry" } else { ", giving up" }
                );
                store.message_failed(m.seq, &why, retry_at).await?;
            }
        }
    }
    Ok(due.len())
}

async fn post(http: &reqwest::Client, m: &OutboxMessage) -> Result<(), String> {
    let resp = http
        .post(&m.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(MESSAGE_ID_HEADER, &m.id)
        .body(m.body.clone())
        .send()
        .await
        .map_err(|e| error_chain(&e))?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else if status.is_redirection() {
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let shown: String = location.chars().take(MAX_LOCATION_SHOWN).collect();
        // Debug-quoted: the receiver's text never forges a log line.
        Err(format!(
            "HTTP {status}: redirects are not followed (Location: {shown:?})"
        ))
    } else {
        Err(format!("HTTP {status}"))
    }
}

/// An error with its causes (the resolver's refusal is a cause of reqwest's error).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// Wait before attempt `attempts + 1`.
fn backoff_micros(attempts: u32) -> i64 {
    let wait = FIRST_BACKOFF
        .saturating_mul(1 << attempts.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    i64::try_from(wait.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod guard_tests;
#[cfg(test)]
mod tests;
