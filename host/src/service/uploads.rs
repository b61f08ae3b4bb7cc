//! Uploads being compiled and described, per team: at most [`UPLOADS_PER_TEAM`] at
//! once; the next wait their turn (at most [`UPLOAD_WAIT`], holding at most
//! [`WAITING_BYTES`] of bodies per team), anything beyond is refused at once with 503
//! `busy`. Compiling and `describe` run before any lock, on blocking threads and in
//! the compile lane: without this gate one team's flood of uploads would take those
//! (and the memory of every body) from the others' deploys and pages.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Refract, ServiceError};
use crate::deploy;
use crate::runtime::Loaded;

/// Uploads of one team compiled or described at once.
pub const UPLOADS_PER_TEAM: usize = 2;
/// Bytes of uploads one team may have waiting for their turn.
pub const WAITING_BYTES: usize = 128 << 20;
/// How long an upload waits for its turn before it is refused.
pub const UPLOAD_WAIT: Duration = Duration::from_secs(60);

/// One team's permits and the bytes waiting for them.
struct TeamUploads {
    permits: Arc<Semaphore>,
    waiting: Mutex<usize>,
}

/// Each team's upload permits (teams come from the config, so the map is bounded).
#[derive(Default)]
pub(super) struct Uploads {
    teams: super::per_team::PerTeam<Arc<TeamUploads>>,
}

impl Uploads {
    /// One of `team`'s permits for an upload of `bytes`, waited for within the
    /// team's waiting budget, or `Busy`.
    async fn enter(&self, team: &str, bytes: usize) -> Result<OwnedSemaphorePermit, ServiceError> {
        let t = self.teams.get(team, || {
            Arc::new(TeamUploads {
                permits: Arc::new(Semaphore::new(UPLOADS_PER_TEAM)),
                waiting: Mutex::new(0),
            })
        });
        if let Ok(p) = t.permits.clone().try_acquire_owned() {
            return Ok(p);
        }
        let busy = |why: String| {
            ServiceError::Busy(format!(
                "team {team} already has {UPLOADS_PER_TEAM} uploads being compiled and {why}: \
                 retry when one is done"
            ))
        };
        {
            let mut waiting = t.waiting.lock().unwrap_or_else(|p| p.into_inner());
            if *waiting + bytes > WAITING_BYTES {
                return Err(busy(format!(
                    "{} MiB waiting (at most {} MiB may wait)",
                    *waiting >> 20,
                    WAITING_BYTES >> 20
                )));
            }
            *waiting += bytes;
        }
        let got = tokio::time::timeout(UPLOAD_WAIT, t.permits.clone().acquire_owned()).await;
        *t.waiting.lock().unwrap_or_else(|p| p.into_inner()) -= bytes;
        match got {
            Ok(Ok(p)) => Ok(p),
            _ => Err(busy(format!("this one waited {} s", UPLOAD_WAIT.as_secs()))),
        }
    }
}

impl Refract {
    /// Compiles and describes `team`'s upload under its limits, within its upload
    /// permits; called before any lock.
    pub(super) async fn load_upload(
        &self,
        team: &str,
        wasm: Vec<u8>,
    ) -> Result<(Loaded, Vec<u8>), ServiceError> {
        let _permit = self.uploads.enter(team, wasm.len()).await?;
        let limits = self.teams.team(team).limits;
        Ok(deploy::load(&self.runtime, wasm, limits).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_team_past_its_uploads_waits_within_its_bytes_and_others_do_not() {
        let uploads = Arc::new(Uploads::default());
        let mut held = Vec::new();
        for _ in 0..UPLOADS_PER_TEAM {
            held.push(uploads.enter("evil", 1).await.expect("within the permits"));
        }
        // Past the permits, a body bigger than the waiting budget is refused at once.
        let err = uploads
            .enter("evil", WAITING_BYTES + 1)
            .await
            .expect_err("too big to wait");
        assert!(matches!(err, ServiceError::Busy(_)), "{err}");
        assert!(
            err.to_string().contains("at most 128 MiB may wait"),
            "{err}"
        );
        let _good = uploads.enter("good", 1).await.expect("another team");
        // A small one waits its turn, its bytes counted while it waits.
        let waiter = {
            let u = uploads.clone();
            tokio::spawn(async move { u.enter("evil", 10 << 20).await.is_ok() })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let waiting = *uploads
            .teams
            .get("evil", || unreachable!("made above"))
            .waiting
            .lock()
            .expect("lock");
        assert_eq!(waiting, 10 << 20, "its body counts while it waits");
        drop(held);
        assert!(
            waiter.await.expect("waiter"),
            "a freed permit reaches the waiter"
        );
    }
}
