//! A projection version's dead letters: the events it gave up on (policy
//! `dead-letter`), applied again after a fixed build is put in place (a hotfix).

use serde::Serialize;

use super::{Refract, ServiceError};
use crate::daemon::DaemonError;
use crate::deploy::{self, Deployed};
use crate::store::Position;
use crate::store::subscription::DeadLetter;

/// Most dead letters a version's status shows (with the count of all of them).
pub const STATUS_DEAD_LETTERS: usize = 20;
/// Dead letters a page brings when the caller does not say.
pub const DEFAULT_DEAD_LETTER_PAGE: usize = 100;
/// Most dead letters one page brings (a larger `limit` is lowered to it).
pub const MAX_DEAD_LETTER_PAGE: usize = 1_000;

/// One page of a version's dead letters.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetterPage {
    /// The letters after the requested sequence, oldest first.
    pub dead_letters: Vec<DeadLetter>,
    /// How many letters the version has in all.
    pub dead_letter_count: u64,
    /// The `after` of the next page; `None` after the last letter.
    pub next: Option<Position>,
}

impl Refract {
    /// At most `limit` (1 to [`MAX_DEAD_LETTER_PAGE`]) of the events a version gave
    /// up on with a sequence after `after`, oldest first.
    pub async fn dead_letters(
        &self,
        name: &str,
        version: u32,
        after: Position,
        limit: usize,
    ) -> Result<DeadLetterPage, ServiceError> {
        let (target, _) = self.running(name, version).await?;
        let limit = limit.clamp(1, MAX_DEAD_LETTER_PAGE);
        let key = &target.key;
        let mut letters = self.store.dead_letter_page(key, after, limit + 1).await?;
        let more = letters.len() > limit;
        letters.truncate(limit);
        Ok(DeadLetterPage {
            next: letters.last().filter(|_| more).map(|l| l.sequence),
            dead_letters: letters,
            dead_letter_count: self.store.dead_letter_count(key).await?,
        })
    }

    /// Applies a projection version's dead letters again through its running code,
    /// in sequence order after the events it has already projected; those that
    /// apply are removed in the same transaction as their writes. Answers how many
    /// were applied.
    pub async fn replay_dead_letters(
        &self,
        name: &str,
        version: u32,
    ) -> Result<crate::daemon::Replayed, ServiceError> {
        let (target, loaded) = self.running(name, version).await?;
        if target.kind == "subscription" {
            return Err(DaemonError::Unsupported(format!(
                "{name} version {version} is a subscription: rewind it to handle its \
                 dead letters again"
            ))
            .into());
        }
        refuse_with_lookups(&loaded, name, version, "replay its dead letters")?;
        self.bring_here(&target, &loaded).await;
        let done = self.daemon.replay_dead_letters(&target.key).await?;
        tracing::info!(projection = %target.key, ?done, "dead letters replayed");
        Ok(done)
    }
}

impl Refract {
    /// Rebuilds the documents `stream`'s events touch in a running projection
    /// version, from every event that touches them, through its current code (a
    /// repair after a fixed build), without rebuilding the rest.
    pub async fn rebuild_stream(
        &self,
        name: &str,
        version: u32,
        stream: &str,
    ) -> Result<crate::daemon::StreamRebuilt, ServiceError> {
        let stream = crate::store::StreamId::new(stream.to_owned())?;
        let (target, loaded) = self.running(name, version).await?;
        refuse_with_lookups(&loaded, name, version, "rebuild one stream")?;
        if target.kind == "subscription" || self.is_live(&target.key) {
            return Err(DaemonError::Unsupported(format!(
                "{name} version {version} keeps no documents to rebuild (a subscription, or \
                 a live projection: every read folds its stream)"
            ))
            .into());
        }
        if self.candidates.is_building(&target.key) {
            // It runs other code into other documents, and replaces these when done.
            return Err(DaemonError::Unsupported(format!(
                "a candidate build of {name} version {version} is building and will replace \
                 its documents: rebuild the stream once it has swapped in (or failed)"
            ))
            .into());
        }
        self.bring_here(&target, &loaded).await;
        let done = self.daemon.rebuild_stream(&target.key, stream).await?;
        tracing::info!(projection = %target.key, ?done, "stream rebuilt");
        Ok(done)
    }
}

impl Refract {
    /// Replaces the code of `team`'s deployed version of the component's name and
    /// version, keeping its documents and progress (a hotfix); the version's agent
    /// goes on from where it was with the new code.
    pub async fn hotfix(&self, wasm: Vec<u8>, team: &str) -> Result<Deployed, ServiceError> {
        let (loaded, wasm) = self.load_upload(team, wasm).await?;
        let _one_at_a_time = self.locks.team(team).await;
        let key = deploy::key_in(team, &loaded);
        let (rec, _) = self.running(&key.name, key.version).await?;
        if rec.kind != loaded.kind().as_str() {
            return Err(DaemonError::Unsupported(format!(
                "{} version {} is a {}; the upload is a {}",
                key.name,
                key.version,
                rec.kind,
                loaded.kind().as_str()
            ))
            .into());
        }
        if rec.sha256 == loaded.sha256() {
            return Err(DaemonError::Unsupported(format!(
                "{} version {} already runs this code",
                key.name, key.version
            ))
            .into());
        }
        // A candidate still building runs older code: its swap would undo the fix.
        self.drop_candidate(&key).await?;
        let replaced = self
            .stop_and_put_code(&rec, &loaded, &wasm, deploy::NewCode::KeepDocuments)
            .await;
        match replaced {
            Ok(out) => {
                self.run(key, &rec.team, loaded).await;
                Ok(out)
            }
            Err(e) => {
                self.run_previous(key, &rec.team).await;
                Err(e.into())
            }
        }
    }
}

/// Refuses what would fold old events against today's documents for a version
/// whose routing looks its documents up (it would route them as they are now).
pub(super) fn refuse_with_lookups(
    loaded: &crate::runtime::Loaded,
    name: &str,
    version: u32,
    what: &str,
) -> Result<(), ServiceError> {
    match loaded {
        crate::runtime::Loaded::Projection(l) if l.descriptor.uses_lookups() => {
            Err(DaemonError::Unsupported(format!(
                "{name} version {version} looks its own documents up while routing: it cannot \
                 {what} (old events would be routed by today's documents); rebuild the whole \
                 version instead"
            ))
            .into())
        }
        _ => Ok(()),
    }
}
