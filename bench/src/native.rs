//! The SDK's native path as a [`PageProjector`]: the same projection code the
//! component runs, compiled into the benchmark, so a rebuild through the same agent
//! and store shows what the sandbox costs.

use std::marker::PhantomData;

use refract::daemon::PageProjector;
use refract::identity::doc_key::{doc_key, split_key};
use refract::runtime::{DocChange, DocInput, Event as HostEvent, RuntimeError, Slice};
use refract_guest::{DocEvents, Event, GuestError, Projection};

/// Runs projection `P` natively: converts each page once, then slices and applies it
/// with the SDK's own `slice` and `apply`.
pub struct Native<P> {
    component: String,
    /// The page last sliced, converted; each event is moved out on its last use.
    page: Vec<Option<Event>>,
    first_sequence: Option<i64>,
    _projection: PhantomData<fn() -> P>,
}

impl<P: Projection> Native<P> {
    /// A native projector reported as `component` in errors.
    pub fn new(component: impl Into<String>) -> Self {
        Self {
            component: component.into(),
            page: Vec::new(),
            first_sequence: None,
            _projection: PhantomData,
        }
    }

    fn convert(&mut self, page: &[HostEvent]) {
        self.page = page.iter().map(|e| Some(to_event(e))).collect();
        self.first_sequence = page.first().map(|e| e.sequence);
    }

    fn error(&self, e: GuestError) -> RuntimeError {
        RuntimeError::Guest {
            component: self.component.clone(),
            event_sequence: e.event_sequence.and_then(|s| i64::try_from(s).ok()),
            message: e.message,
        }
    }
}

/// The SDK's view of an event the host hands a guest.
pub fn to_event(e: &HostEvent) -> Event {
    Event {
        sequence: e.sequence as u64,
        stream_id: e.stream_id.clone(),
        stream_version: e.stream_version,
        event_type: e.event_type.clone(),
        data: e.data.clone(),
        metadata: e.metadata.clone(),
        tenant: e.tenant.clone(),
        timestamp: e.timestamp,
    }
}

impl<P: Projection + 'static> PageProjector for Native<P> {
    fn slice(&mut self, page: &[HostEvent]) -> Result<Vec<Slice>, RuntimeError> {
        // The page is converted once, here; `apply` moves the events out of it.
        let events: Vec<Event> = page.iter().map(to_event).collect();
        let slices = refract_guest::slice::<P>(&events).map_err(|e| self.error(e))?;
        self.page = events.into_iter().map(Some).collect();
        self.first_sequence = page.first().map(|e| e.sequence);
        Ok(slices
            .into_iter()
            .map(|s| Slice {
                doc_id: doc_key(s.collection.as_deref(), &s.doc_id),
                events: s.events,
            })
            .collect())
    }

    fn apply(
        &mut self,
        page: &[HostEvent],
        docs: Vec<DocInput>,
    ) -> Result<Vec<DocChange>, RuntimeError> {
        let same = self.page.len() == page.len()
            && self.first_sequence == page.first().map(|e| e.sequence)
            && self.page.iter().all(Option::is_some);
        if !same {
            self.convert(page);
        }
        let mut uses = vec![0u32; self.page.len()];
        for d in &docs {
            for &i in &d.events {
                if let Some(u) = uses.get_mut(i as usize) {
                    *u += 1;
                }
            }
        }
        let mut input = Vec::with_capacity(docs.len());
        for d in docs {
            let mut events = Vec::with_capacity(d.events.len());
            for i in d.events {
                let i = i as usize;
                let slot = self.page.get_mut(i).ok_or_else(|| {
                    RuntimeError::Host(format!("event index {i} is outside the page"))
                })?;
                uses[i] -= 1;
                let event = if uses[i] == 0 {
                    slot.take()
                } else {
                    slot.clone()
                };
                events.push(event.ok_or_else(|| RuntimeError::Host("event used up".into()))?);
            }
            let (collection, id) = split_key(&d.id);
            input.push(DocEvents {
                collection: collection.map(str::to_owned),
                doc_id: id.to_owned(),
                state: d.state,
                events,
            });
        }
        let changes = refract_guest::apply::<P>(input).map_err(|e| self.error(e))?;
        Ok(changes
            .into_iter()
            .map(|c| match c {
                refract_guest::DocChange::Put(body) => DocChange::Put(body),
                refract_guest::DocChange::Delete => DocChange::Delete,
                refract_guest::DocChange::Keep => DocChange::Keep,
            })
            .collect())
    }
}
