//! The delivery worker: one task per team with due messages, each POSTing them one
//! at a time and recording the answer; a failed delivery is retried on
//! [`DELIVERY_RETRY`]'s schedule (a refused one is not retried at all).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Grants, MESSAGE_ID_HEADER, OutboxWaker, guard};
use crate::retry::{Backoff, Idle, RetryPolicy};
use crate::store::subscription::OutboxMessage;
use crate::store::{Store, StoreError, now_micros};

/// How a message is retried: 12 attempts (then it is shown as failed), from 250 ms
/// doubling up to 5 minutes. Every failed POST counts (the receiver's failure); a
/// store error ends the pass without touching the message, so it never counts.
const DELIVERY_RETRY: RetryPolicy = RetryPolicy {
    attempts: 12,
    backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(300)),
};
/// How often an idle worker looks for retries that came due.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// Messages a team's task reads at once.
const TEAM_BATCH: usize = 16;
/// How long shutdown waits for team tasks to notice it before aborting them.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// Most bytes of a `Location` header quoted in the log.
const MAX_LOCATION_SHOWN: usize = 512;

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
            Idle::new(IDLE_POLL)
                .wait(waker.0.notified(), &mut shutdown)
                .await;
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
                let retry_at = DELIVERY_RETRY
                    .retry_after(attempts)
                    .map(|wait| now_micros().saturating_add(micros(wait)));
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

pub(super) async fn post(http: &reqwest::Client, m: &OutboxMessage) -> Result<(), String> {
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

/// A wait in microseconds, as the store's timestamps count.
fn micros(wait: Duration) -> i64 {
    i64::try_from(wait.as_micros()).unwrap_or(i64::MAX)
}
