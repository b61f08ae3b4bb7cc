//! The rebuild dataset: help-desk streams appended through the library in rounds (each
//! stream gets its next few events, streams in a shuffled order), so pages interleave
//! many incidents as a live store's do. Generated while appended, never held whole.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, ensure};
use refract::store::sqlite::SqliteStore;
use refract::store::{AppendRequest, EventStore, Store, StreamId};

use crate::Scale;
use crate::helpdesk::{Incident, rounds, stream_id};
use crate::report::Report;

/// Stream ids of the dataset are `incident-NNNNN`.
pub const PREFIX: &str = "incident";

/// A prepared store of help-desk events.
pub struct Dataset {
    /// The data directory holding `refract.db`.
    pub data_dir: PathBuf,
    /// Number of streams.
    pub streams: usize,
    /// Events in each stream.
    pub per_stream: usize,
    /// Events in all (the head).
    pub total: i64,
    /// An untouched copy of the data directory (for the daemon binary), if made.
    pub pristine: Option<PathBuf>,
}

impl Dataset {
    /// The database file.
    pub fn db(&self) -> PathBuf {
        self.data_dir.join("refract.db")
    }
}

/// Appends the dataset into `dir/rebuild-data`; with `copy`, also copies the finished
/// database to `dir/daemon-data` before any projection touches it.
pub async fn prepare(
    report: &mut Report,
    scale: &Scale,
    dir: &Path,
    copy: bool,
) -> anyhow::Result<Dataset> {
    let data_dir = dir.join("rebuild-data");
    std::fs::create_dir_all(&data_dir)?;
    let ds = Dataset {
        data_dir,
        streams: scale.streams,
        per_stream: scale.per_stream,
        total: (scale.streams * scale.per_stream) as i64,
        pristine: None,
    };
    eprintln!(
        "preparing {} events over {} streams...",
        ds.total, ds.streams
    );
    let store = SqliteStore::open(&ds.db()).await?;
    let mut gens: Vec<Incident> = (0..ds.streams)
        .map(|n| Incident::new(n, ds.per_stream))
        .collect();
    let started = Instant::now();
    for (s, count) in rounds(ds.streams, ds.per_stream, scale.dataset_chunk) {
        let g = &mut gens[s];
        let req = AppendRequest {
            stream: StreamId::new(stream_id(PREFIX, s))?,
            expected: g.expected(),
            idempotency_key: None,
            tenant: None,
            team: refract::teams::DEFAULT_TEAM.into(),
            events: g.next_batch(count),
        };
        store.append(req).await?;
    }
    let secs = started.elapsed().as_secs_f64();
    let head = store.head().await?;
    ensure!(
        head == ds.total,
        "the dataset's head is {head} after appending {} events",
        ds.total
    );
    report.add(
        "dataset",
        "append_events_per_s",
        format!(
            "append {} events (library, {} per append)",
            ds.total, scale.dataset_chunk
        ),
        ds.total as f64 / secs,
        "events/s",
    );
    store.close().await;
    let mut ds = ds;
    if copy {
        let to = dir.join("daemon-data");
        std::fs::create_dir_all(&to)?;
        for name in ["refract.db", "refract.db-wal", "refract.db-shm"] {
            let from = ds.data_dir.join(name);
            if from.exists() {
                std::fs::copy(&from, to.join(name))
                    .with_context(|| format!("copying {}", from.display()))?;
            }
        }
        ds.pristine = Some(to);
    }
    let bytes = std::fs::metadata(ds.db()).map(|m| m.len()).unwrap_or(0);
    report.add(
        "dataset",
        "db_mib",
        "database file size",
        bytes as f64 / (1024.0 * 1024.0),
        "MiB",
    );
    Ok(ds)
}
