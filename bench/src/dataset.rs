//! The rebuild dataset: help-desk streams appended through the library in rounds (each
//! stream gets its next few events, streams in a shuffled order), so pages interleave
//! many incidents as a live store's do. Generated while appended, never held whole.

use std::path::Path;
use std::time::Instant;

use anyhow::ensure;
use refract::store::subscription::HandledPage;
use refract::store::{AppendRequest, ProjectionKey, StreamId};

use crate::Scale;
use crate::backend::{Backend, Db};
use crate::helpdesk::{Incident, rounds, stream_id};
use crate::report::Report;

/// Stream ids of the dataset are `incident-NNNNN`.
pub const PREFIX: &str = "incident";

/// Appends per transaction while loading the dataset into PostgreSQL.
const PG_GROUP: usize = 1_000;

/// A prepared store of help-desk events.
pub struct Dataset {
    /// The store holding them.
    pub db: Db,
    /// Number of streams.
    pub streams: usize,
    /// Events in each stream.
    pub per_stream: usize,
    /// Events in all (the head).
    pub total: i64,
    /// An untouched copy of the store (for the daemon binary), if made.
    pub pristine: Option<Db>,
}

impl Dataset {
    /// Drops the stores (PostgreSQL databases).
    pub async fn finish(self) {
        self.db.finish().await;
        if let Some(p) = self.pristine {
            p.finish().await;
        }
    }
}

/// Appends the dataset into a new store `rebuild-data`; with `copy`, also copies the
/// finished store to `daemon-data` before any projection touches it.
pub async fn prepare(
    report: &mut Report,
    scale: &Scale,
    dir: &Path,
    backend: &Backend,
    copy: bool,
) -> anyhow::Result<Dataset> {
    let db = backend.create(dir, "rebuild-data").await?;
    let mut ds = Dataset {
        db,
        streams: scale.streams,
        per_stream: scale.per_stream,
        total: (scale.streams * scale.per_stream) as i64,
        pristine: None,
    };
    eprintln!(
        "preparing {} events over {} streams...",
        ds.total, ds.streams
    );
    match append_all(report, scale, dir, &mut ds, copy).await {
        Ok(()) => Ok(ds),
        Err(e) => {
            ds.finish().await;
            Err(e)
        }
    }
}

async fn append_all(
    report: &mut Report,
    scale: &Scale,
    dir: &Path,
    ds: &mut Dataset,
    copy: bool,
) -> anyhow::Result<()> {
    let store = ds.db.open().await?;
    let mut gens: Vec<Incident> = (0..ds.streams)
        .map(|n| Incident::new(n, ds.per_stream))
        .collect();
    // On PostgreSQL an append is two commits (the events, then their sequencing), so
    // the same appends, in the same order, go in transactions of many appends (the
    // subscription commit, as the wide workload's), or loading would take an hour.
    let group = if ds.db.is_postgres() { PG_GROUP } else { 1 };
    let loader = ProjectionKey {
        name: "dataset-loader".into(),
        version: 1,
    };
    if group > 1 {
        store.prepare_projection(&loader).await?;
    }
    let started = Instant::now();
    let mut pending = Vec::with_capacity(group);
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
        if group == 1 {
            store.append(req).await?;
            continue;
        }
        pending.push(req);
        if pending.len() == group {
            let page = HandledPage {
                emits: std::mem::take(&mut pending),
                ..Default::default()
            };
            store.commit_handled(&loader, "bench", &page).await?;
        }
    }
    if !pending.is_empty() {
        let page = HandledPage {
            emits: pending,
            ..Default::default()
        };
        store.commit_handled(&loader, "bench", &page).await?;
    }
    let secs = started.elapsed().as_secs_f64();
    if group > 1 {
        store.drop_projection(&loader).await?;
    }
    let head = store.head().await?;
    ensure!(
        head == ds.total,
        "the dataset's head is {head} after appending {} events",
        ds.total
    );
    let how = if group == 1 {
        format!("library, {} per append", scale.dataset_chunk)
    } else {
        format!(
            "{} per append, {group} appends per transaction",
            scale.dataset_chunk
        )
    };
    report.add(
        "dataset",
        "append_events_per_s",
        format!("append {} events ({how})", ds.total),
        ds.total as f64 / secs,
        "events/s",
    );
    store.close().await;
    if copy {
        ds.pristine = Some(ds.db.copy(dir, "daemon-data").await?);
    }
    let bytes = ds.db.size_bytes().await?;
    report.add(
        "dataset",
        "db_mib",
        "database size",
        bytes as f64 / (1024.0 * 1024.0),
        "MiB",
    );
    Ok(())
}
