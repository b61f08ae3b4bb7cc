//! What a page's reads see: the store's events, then this page's own emits to the
//! stream (read back before they are committed), within the team's read access.

use super::PageEffects;
use crate::store::{
    AppendRequest, ExpectedVersion, MAX_STREAM_PAGE_BYTES, RecordedEvent, StreamId,
};

/// Most events a whole-stream `read-stream` (WIT 1.0.0) returns; a longer stream is
/// refused (read it with `read-stream-page`) rather than materialised.
pub const MAX_WHOLE_STREAM_READ: usize = 10_000;
/// Most events one `read-stream-page` returns, whatever the guest asks.
pub const MAX_STREAM_PAGE: u32 = 1_000;

impl PageEffects {
    /// The stream's version and at most `limit` of its events from `from` on: the
    /// store's, then this page's emits to it, these only when the store's page reached
    /// the stored version (a page cut short by bytes ends where the store's does).
    fn window(
        &self,
        call: &str,
        stream: String,
        from: u64,
        limit: usize,
    ) -> Result<(u64, Vec<RecordedEvent>), String> {
        let id = StreamId::new(&stream).map_err(|e| format!("{call}: {e}"))?;
        self.may_read(call, &stream)?;
        let store = self.env.store.clone();
        let (version, mut events) = self.block_on(call, async move {
            store.read_stream_page(&id, from, limit).await
        })?;
        let g = self.gathered();
        let Some((v, pending)) = g.overlay.get(&stream) else {
            return Ok((version, events));
        };
        if reaches(&events, from, version) {
            let room = limit.saturating_sub(events.len());
            let pending = pending
                .iter()
                .flat_map(|&i| recorded(&g.emits[i]))
                .filter(|e| e.stream_version >= from);
            events.extend(pending.take(room));
        }
        Ok((*v, events))
    }

    /// Refuses a stream its team may not read directly, naming only that stream
    /// (nothing of it is read, not even whether it exists).
    fn may_read(&self, call: &str, stream: &str) -> Result<(), String> {
        if self.env.access.may_read(stream) {
            return Ok(());
        }
        let team = &self.env.team;
        Err(format!(
            "{call}: team {team} may not read stream {stream:?} (config: [teams.{team}] \
             read_events, read_streams)"
        ))
    }

    /// `read-stream`: the whole stream, refused past [`MAX_WHOLE_STREAM_READ`] events
    /// or a page's bytes.
    pub(super) fn read_whole(&self, stream: String) -> Result<(u64, Vec<RecordedEvent>), String> {
        let cap = MAX_WHOLE_STREAM_READ;
        let (version, events) = self.window("read-stream", stream.clone(), 1, cap + 1)?;
        if events.len() > cap {
            return Err(format!(
                "read-stream: stream {stream} has more than {cap} events; read it in pages \
                 with read-stream-page (WIT refract:subscription@1.1.0)"
            ));
        }
        // Never part of a stream as the whole: a read cut short by bytes is refused.
        if !reaches(&events, 1, version) {
            return Err(format!(
                "read-stream: stream {stream} is more than {} MiB of events; read it in \
                 pages with read-stream-page (WIT refract:subscription@1.1.0)",
                MAX_STREAM_PAGE_BYTES >> 20
            ));
        }
        Ok((version, events))
    }

    /// `read-stream-page`: at most `limit` events from `from_version` on.
    pub(super) fn read_window(
        &self,
        stream: String,
        from_version: u64,
        limit: u32,
    ) -> Result<(u64, Vec<RecordedEvent>), String> {
        if i64::try_from(from_version).is_err() {
            return Err(format!(
                "read-stream-page: from_version {from_version} is past the largest stream \
                 version ({})",
                i64::MAX
            ));
        }
        if limit == 0 {
            return Err("read-stream-page: limit must be at least 1".into());
        }
        let limit = limit.min(MAX_STREAM_PAGE) as usize;
        self.window("read-stream-page", stream, from_version.max(1), limit)
    }
}

/// An emit of this page as the events it will append (read back by the same page):
/// no sequence yet, the version its commit is pinned to.
fn recorded(req: &AppendRequest) -> impl Iterator<Item = RecordedEvent> + '_ {
    let base = match req.expected {
        ExpectedVersion::Exact(v) => v,
        _ => 0,
    };
    let timestamp = crate::store::now_micros();
    req.events
        .iter()
        .enumerate()
        .map(move |(i, e)| RecordedEvent {
            sequence: 0,
            stream_id: req.stream.as_str().to_owned(),
            stream_version: base + i as u64 + 1,
            event_type: e.event_type.clone(),
            data: e.data.clone(),
            metadata: e.metadata.clone(),
            tenant: None,
            timestamp,
        })
}

/// Whether `events`, read from `from` on, reach the stream's `version`: the last is
/// at it, or there are none to read.
fn reaches(events: &[RecordedEvent], from: u64, version: u64) -> bool {
    events
        .last()
        .map_or(from > version, |e| e.stream_version >= version)
}
