//! `refract dev`: the daemon plus a watcher on component files. A changed `.wasm`
//! is reloaded (see [`Refract::reload`]) and what happened, with timings, is logged.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::service::{Refract, Reload};
use crate::store::ProjectionKey;

/// Quiet time after the last file event before reloading: a build or a rename
/// produces a burst of events (notify reports ~7 for one rename).
const DEBOUNCE: Duration = Duration::from_millis(300);
/// How long a reloaded version may take to re-project before the watcher stops waiting.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(600);

/// Where `cargo build --target wasm32-wasip2 --release` and `cargo component build
/// --release` put components, watched when no path is given.
const DEFAULT_PATHS: [&str; 2] = [
    "target/wasm32-wasip2/release",
    "target/wasm32-wasip1/release",
];

/// The watched places: whole directories (every `.wasm` directly in them) and files.
#[derive(Debug, Default)]
struct Targets {
    dirs: Vec<PathBuf>,
    files: Vec<PathBuf>,
}

impl Targets {
    /// Resolves the command line's paths; a path that does not exist is an error,
    /// except the default directories, which are skipped when missing.
    fn resolve(paths: &[PathBuf]) -> anyhow::Result<Self> {
        let defaults = paths.is_empty();
        let given: Vec<PathBuf> = if defaults {
            DEFAULT_PATHS.iter().map(PathBuf::from).collect()
        } else {
            paths.to_vec()
        };
        let mut out = Self::default();
        for path in given {
            match std::fs::canonicalize(&path) {
                Ok(p) if p.is_dir() => out.dirs.push(p),
                Ok(p) => out.files.push(p),
                Err(_) if defaults => {}
                Err(e) => bail!("cannot watch {}: {e}", path.display()),
            }
        }
        if out.dirs.is_empty() && out.files.is_empty() {
            bail!(
                "nothing to watch: {} do not exist; build a component first or name \
                 the .wasm files or directories to watch",
                DEFAULT_PATHS.join(" and ")
            );
        }
        Ok(out)
    }

    /// Whether a changed path is a component this watcher reloads.
    fn wants(&self, path: &Path) -> bool {
        self.files.iter().any(|f| f == path)
            || (path.extension().is_some_and(|e| e == "wasm")
                && path
                    .parent()
                    .is_some_and(|d| self.dirs.iter().any(|w| w == d)))
    }

    /// The directories to register with the OS: a file is watched through its
    /// directory, because builds replace files by renaming over them.
    fn watch_dirs(&self) -> BTreeSet<PathBuf> {
        let parents = self
            .files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_owned));
        self.dirs.iter().cloned().chain(parents).collect()
    }

    /// The components present now, in name order.
    fn present(&self) -> Vec<PathBuf> {
        let mut out: BTreeSet<PathBuf> =
            self.files.iter().filter(|f| f.is_file()).cloned().collect();
        for dir in &self.dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            out.extend(
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.is_file() && self.wants(p)),
            );
        }
        out.into_iter().collect()
    }
}

/// Loads the components under `paths` and reloads them whenever they change, until
/// the process ends. Fails only if the paths cannot be watched.
pub async fn watch(svc: Arc<Refract>, paths: &[PathBuf]) -> anyhow::Result<()> {
    let targets = Targets::resolve(paths)?;
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher =
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
            Ok(ev) if matches!(ev.kind, EventKind::Create(_) | EventKind::Modify(_)) => {
                for p in ev.paths {
                    let _ = tx.send(p);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("dev: file watcher: {e}"),
        })
        .context("cannot start the file watcher")?;
    for dir in targets.watch_dirs() {
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .with_context(|| format!("cannot watch {}", dir.display()))?;
        tracing::info!("dev: watching {} for components", dir.display());
    }
    let mut waiters = Waiters::new();
    for path in targets.present() {
        reload(&svc, &path, Instant::now(), &mut waiters).await;
    }
    tokio::spawn(async move {
        // Moved here so the OS watch lives as long as this loop.
        let _watcher = watcher;
        while let Some(first) = rx.recv().await {
            let changed_at = Instant::now();
            let mut batch = BTreeSet::from([first]);
            while let Ok(Some(p)) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                batch.insert(p);
            }
            for path in batch.into_iter().filter(|p| targets.wants(p)) {
                reload(&svc, &path, changed_at, &mut waiters).await;
            }
        }
    });
    Ok(())
}

/// The task of each version that waits to report its catch-up; a newer reload of
/// the version replaces it (the build it waited for is gone).
type Waiters = HashMap<ProjectionKey, JoinHandle<()>>;

/// Reloads one file and logs what happened; a failure is logged, never fatal.
async fn reload(svc: &Arc<Refract>, path: &Path, changed_at: Instant, waiters: &mut Waiters) {
    let file = path.display();
    let wasm = match tokio::fs::read(path).await {
        Ok(w) => w,
        // Deleted, or renamed away, since the event: nothing to load.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            tracing::error!("dev: {file}: cannot read it: {e}; the previous version keeps serving");
            return;
        }
    };
    let done = match svc.reload(wasm).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("dev: {file}: {e}; the previous version keeps serving");
            return;
        }
    };
    let key = done.key();
    let compiled = format!(
        "{} in {} ms",
        if done.from_cache {
            "loaded from cache"
        } else {
            "compiled"
        },
        done.compile.as_millis()
    );
    match &done.action {
        Reload::Unchanged => {
            tracing::info!("dev: {file}: {key} unchanged ({})", done.deployed.state);
            return;
        }
        Reload::Deployed => tracing::info!(
            "dev: {file}: deployed {key} ({}), {compiled}",
            done.deployed.state
        ),
        Reload::Candidate {
            previous_sha256, ..
        } => {
            tracing::info!(
                "dev: {file}: new build of {key} (sha256 {} -> {}), {compiled}; re-projecting \
                 it from the first event beside the running build, which serves until the new \
                 one has caught up",
                short(previous_sha256),
                short(&done.deployed.sha256)
            );
            let (svc, done) = (svc.clone(), done.clone());
            let waiting_for = key.clone();
            let waiter = tokio::spawn(async move {
                let started = Instant::now();
                match svc.wait_reloaded(&done, CATCH_UP_LIMIT).await {
                    Ok(applied) => tracing::info!(
                        "dev: {key} caught up: swapped in the new build, projected {applied} \
                         events in {} ms ({} ms since the file changed)",
                        started.elapsed().as_millis(),
                        changed_at.elapsed().as_millis()
                    ),
                    Err(e) => {
                        tracing::error!("dev: {key}: {e}; the previous build keeps serving")
                    }
                }
            });
            if let Some(superseded) = waiters.insert(waiting_for, waiter) {
                superseded.abort();
            }
            return;
        }
        Reload::Replaced { previous_sha256 } => tracing::info!(
            "dev: {file}: replaced {key} in place (sha256 {} -> {}), {compiled}; \
             re-projecting from the first event",
            short(previous_sha256),
            short(&done.deployed.sha256)
        ),
    }
    let svc = svc.clone();
    let waiting_for = key.clone();
    let waiter = tokio::spawn(async move {
        let started = Instant::now();
        match svc.wait_reloaded(&done, CATCH_UP_LIMIT).await {
            Ok(applied) => tracing::info!(
                "dev: {key} caught up: projected {applied} events in {} ms ({} ms since the \
                 file changed)",
                started.elapsed().as_millis(),
                changed_at.elapsed().as_millis()
            ),
            Err(e) => tracing::error!("dev: {key}: {e}"),
        }
    });
    if let Some(superseded) = waiters.insert(waiting_for, waiter) {
        superseded.abort();
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}
