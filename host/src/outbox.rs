//! Delivers the outbox after commit: each message is POSTed as JSON to its URL, with
//! its stable id in the `Refract-Message-Id` header, retried with backoff until a 2xx
//! answer (at least once; receivers deduplicate on the id) or the last attempt.
//! Only hosts granted to the queuing component's team are reached.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::store::subscription::OutboxMessage;
use crate::store::{Store, StoreError, now_micros};

/// Header carrying the message's stable id.
pub const MESSAGE_ID_HEADER: &str = "refract-message-id";
/// Attempts before a message is given up on (and shown as failed).
const MAX_ATTEMPTS: u32 = 12;
/// Wait before the first retry; doubled each time up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long one delivery may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an idle worker looks for retries that came due.
const IDLE_POLL: Duration = Duration::from_millis(200);

/// The hosts each team's components may deliver to (`host` or `host:port`), by
/// team name; a team not listed may reach nothing.
#[derive(Debug, Clone, Default)]
pub struct Grants(pub BTreeMap<String, Vec<String>>);

impl Grants {
    /// Why `team` may not send to `url`, or `None` when it may.
    pub fn refusal(&self, team: &str, url: &str) -> Option<String> {
        let parsed = match reqwest::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => u,
            Ok(u) => return Some(format!("{url}: scheme {} is not http or https", u.scheme())),
            Err(e) => return Some(format!("{url:?} is not a URL: {e}")),
        };
        let Some(host) = parsed.host_str() else {
            return Some(format!("{url} has no host"));
        };
        let port = parsed.port_or_known_default();
        let granted = self.0.get(team).is_some_and(|hosts| {
            hosts.iter().any(|grant| match grant.rsplit_once(':') {
                Some((h, p)) => h.eq_ignore_ascii_case(host) && p.parse().ok() == port,
                None => grant.eq_ignore_ascii_case(host),
            })
        });
        (!granted).then(|| {
            format!(
                "host {host}{} is not granted to team {team} (config: [teams.{team}] \
                 outbound_hosts)",
                port.map(|p| format!(":{p}")).unwrap_or_default()
            )
        })
    }
}

/// The delivery worker's handle: wake it when messages were committed.
#[derive(Clone, Default)]
pub struct OutboxWaker(Arc<Notify>);

impl OutboxWaker {
    /// Tells the worker that new messages may be due.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Runs the delivery worker until `shutdown` turns true.
pub fn spawn(
    store: Arc<dyn Store>,
    grants: Grants,
    waker: OutboxWaker,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap_or_default();
        while !*shutdown.borrow() {
            let worked = match deliver_due(store.as_ref(), &grants, &http).await {
                Ok(n) => n > 0,
                Err(e) => {
                    tracing::warn!("outbox: {e}");
                    false
                }
            };
            if !worked {
                tokio::select! {
                    _ = waker.0.notified() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    })
}

/// One pass over the due messages; returns how many were attempted.
pub async fn deliver_due(
    store: &dyn Store,
    grants: &Grants,
    http: &reqwest::Client,
) -> Result<usize, StoreError> {
    let due = store.due_messages(now_micros(), 64).await?;
    for m in &due {
        if let Some(why) = grants.refusal(&m.team, &m.url) {
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
        .map_err(|e| format!("{e}"))?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

/// Wait before attempt `attempts + 1`.
fn backoff_micros(attempts: u32) -> i64 {
    let wait = FIRST_BACKOFF
        .saturating_mul(1 << attempts.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    i64::try_from(wait.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
