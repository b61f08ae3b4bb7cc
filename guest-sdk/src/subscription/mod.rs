//! Subscriptions: components that react to events. Where a projection folds events
//! into documents, a subscription acts: it raises events (`emit`, committed with its
//! progress), reads streams to decide, and sends messages through the outbox.
//!
//! Implement [`Subscription`] and export it with
//! [`export_subscription!`](crate::export_subscription); test it natively with
//! [`testing`].

mod export;
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod glue;
pub mod testing;
#[cfg(test)]
mod tests;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::decode;
use crate::projection::Envelope;
use crate::types::{Event, GuestError};

/// A subscription: handles the events of its types, one at a time, in order.
pub trait Subscription {
    /// The events handled: a plain serde enum whose variant names are the event types.
    type Event: DeserializeOwned;

    /// The subscription's name: lowercase letters, digits, `-` and `_`.
    const NAME: &'static str;

    /// Its version; a new version is deployed beside the old one.
    const VERSION: u32;

    /// Where it starts when first deployed.
    const START: Start = Start::Beginning;

    /// A version deployed from the beginning runs with side effects held (its emits
    /// and sends dropped) until it passes where its previous version got, so nothing
    /// fires twice; `true` opts out.
    const EFFECTS_DURING_CATCH_UP: bool = false;

    /// The most events the subscription takes per page (WIT 1.1.0), for example
    /// because it reads streams for each event: the host sends pages of at most
    /// `min(its page size, this)` events, so each page commits in good time. None
    /// leaves the page size to the host.
    const MAX_PAGE_SIZE: Option<u32> = None;

    /// Reacts to one event. An error fails the page: nothing of it is committed, and
    /// the host retries or pauses as configured.
    fn handle(ctx: &mut Ctx<'_>, event: &Envelope<Self::Event>) -> Result<(), String>;
}

/// Where a subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// From the first event in the store.
    Beginning,
    /// Only events appended after it is deployed.
    Now,
    /// After this sequence.
    AfterSequence(u64),
    /// From the first event recorded at or after this time (µs since the Unix epoch).
    AtTime(i64),
}

/// The version a stream must be at for an emit to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be at exactly this version.
    Exact(u64),
}

/// One event to emit: its type and data JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// The event type.
    pub event_type: String,
    /// The data, JSON text.
    pub data: String,
}

/// What a subscription can do to the world; the host provides it (or the test harness).
pub trait Effects {
    /// Appends events to a stream as part of the current page; returns its new version.
    fn emit(
        &mut self,
        stream: &str,
        expected: Expected,
        events: Vec<NewEvent>,
        idempotency_key: Option<&str>,
    ) -> Result<u64, String>;

    /// The stream's version and events, this page's emits included.
    fn read_stream(&mut self, stream: &str) -> Result<(u64, Vec<Event>), String>;

    /// The stream's version and at most `limit` of its events from `from_version`
    /// on, this page's emits included.
    fn read_stream_page(
        &mut self,
        stream: &str,
        from_version: u64,
        limit: u32,
    ) -> Result<(u64, Vec<Event>), String> {
        let (version, events) = self.read_stream(stream)?;
        let events = events
            .into_iter()
            .filter(|e| e.stream_version >= from_version)
            .take(limit as usize)
            .collect();
        Ok((version, events))
    }

    /// Queues a JSON message for the outbox; `key` makes its id stable.
    fn send(&mut self, url: &str, body: String, key: &str) -> Result<(), String>;

    /// A setting from the daemon's config for this component.
    fn setting(&mut self, key: &str) -> Option<String>;
}

/// A stream read back, its events decoded as the variants of `E` it has (other types
/// are left out).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamState<E> {
    /// The stream's version (0: it does not exist).
    pub version: u64,
    /// Its events of the types `E` names, in order.
    pub events: Vec<Envelope<E>>,
}

/// Events asked for per paged read (the host's cap).
pub(crate) const STREAM_PAGE: u32 = 1000;

/// Part of a stream read back ([`Ctx::read_stream_page`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamPage<E> {
    /// The stream's version (0: it does not exist).
    pub version: u64,
    /// The page's events of the types `E` names, in order.
    pub events: Vec<Envelope<E>>,
    /// The version to read on from, if the stream has events after this page.
    pub next: Option<u64>,
}

/// What a subscription's `handle` works with: the effects, with typed helpers.
pub struct Ctx<'a> {
    effects: &'a mut dyn Effects,
    sequence: u64,
}

impl<'a> Ctx<'a> {
    /// A context over `effects`, handling the event at `sequence`.
    pub fn new(effects: &'a mut dyn Effects, sequence: u64) -> Self {
        Self { effects, sequence }
    }

    /// The sequence of the event being handled.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Emits one event of type `event_type` with `data` serialized as JSON; returns
    /// the stream's new version. With an idempotency key already used, nothing is
    /// appended and the version of the first append is returned.
    pub fn emit<T: Serialize>(
        &mut self,
        stream: &str,
        expected: Expected,
        event_type: &str,
        data: &T,
        idempotency_key: Option<&str>,
    ) -> Result<u64, String> {
        let data = serde_json::to_string(data)
            .map_err(|e| format!("cannot serialize {event_type}: {e}"))?;
        let event = NewEvent {
            event_type: event_type.to_owned(),
            data,
        };
        self.effects
            .emit(stream, expected, vec![event], idempotency_key)
    }

    /// Reads a whole stream, decoding the events of the types `E` names. For long
    /// streams prefer [`fold_stream`](Self::fold_stream), which holds one page at a
    /// time.
    pub fn read_stream<E: DeserializeOwned>(
        &mut self,
        stream: &str,
    ) -> Result<StreamState<E>, String> {
        let (version, raw) = self.effects.read_stream(stream)?;
        let events = decoded(stream, raw)?;
        Ok(StreamState { version, events })
    }

    /// Reads at most `limit` events of a stream from `from_version` on (the host
    /// caps `limit` at 1,000), decoding those of the types `E` names.
    pub fn read_stream_page<E: DeserializeOwned>(
        &mut self,
        stream: &str,
        from_version: u64,
        limit: u32,
    ) -> Result<StreamPage<E>, String> {
        let (version, raw) = self.effects.read_stream_page(stream, from_version, limit)?;
        let next = raw
            .last()
            .map(|e| e.stream_version + 1)
            .filter(|next| *next <= version);
        let events = decoded(stream, raw)?;
        Ok(StreamPage {
            version,
            events,
            next,
        })
    }

    /// Folds a whole stream into `state` a page at a time (the events of the types
    /// `E` names, oldest first); returns the stream's version and the state.
    pub fn fold_stream<E: DeserializeOwned, A>(
        &mut self,
        stream: &str,
        mut state: A,
        mut f: impl FnMut(&mut A, &Envelope<E>),
    ) -> Result<(u64, A), String> {
        let mut from = 1;
        loop {
            let page = self.read_stream_page::<E>(stream, from, STREAM_PAGE)?;
            for e in &page.events {
                f(&mut state, e);
            }
            match page.next {
                Some(next) if next > from => from = next,
                _ => return Ok((page.version, state)),
            }
        }
    }

    /// A setting given to this component in the daemon's config
    /// (`[components.<name>.settings]`), e.g. where to send its messages.
    pub fn setting(&mut self, key: &str) -> Option<String> {
        self.effects.setting(key)
    }

    /// Queues `body` (as JSON) for delivery to `url` after this page commits. Give a
    /// `key` unique to what the message says (e.g. the incident id): a message with
    /// the same key is delivered once, even if the events are handled again.
    pub fn send<T: Serialize>(&mut self, url: &str, body: &T, key: &str) -> Result<(), String> {
        let body =
            serde_json::to_string(body).map_err(|e| format!("cannot serialize message: {e}"))?;
        self.effects.send(url, body, key)
    }
}

/// Decodes the events of the types `E` names, leaving out the others.
fn decoded<E: DeserializeOwned>(stream: &str, raw: Vec<Event>) -> Result<Vec<Envelope<E>>, String> {
    let known = decode::variants::<E>();
    let mut events = Vec::with_capacity(raw.len());
    for e in raw {
        if !known.contains(&e.event_type.as_str()) {
            continue;
        }
        let decoded = decode::decode::<E>(&e.event_type, &e.data).map_err(|err| {
            format!(
                "cannot decode {} of stream {stream} (version {}): {err}",
                e.event_type, e.stream_version
            )
        })?;
        events.push(Envelope::new(decoded, e));
    }
    Ok(events)
}

/// What a subscription says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionDescriptor {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: u32,
    /// The event types it handles.
    pub event_types: Vec<String>,
    /// Where it starts.
    pub start: Start,
    /// Whether it wants its side effects during catch-up.
    pub effects_during_catch_up: bool,
    /// The most events it takes per page, if it says.
    pub max_page_size: Option<u32>,
}

/// The descriptor of `S`.
pub fn describe<S: Subscription>() -> SubscriptionDescriptor {
    SubscriptionDescriptor {
        name: S::NAME.to_owned(),
        version: S::VERSION,
        event_types: decode::variants::<S::Event>()
            .iter()
            .map(|t| (*t).to_owned())
            .collect(),
        start: S::START,
        effects_during_catch_up: S::EFFECTS_DURING_CATCH_UP,
        max_page_size: S::MAX_PAGE_SIZE,
    }
}

/// Handles a page in order; the first error stops it, naming the event.
pub fn handle<S: Subscription>(
    effects: &mut dyn Effects,
    page: &[Event],
) -> Result<(), GuestError> {
    let known = decode::variants::<S::Event>();
    for raw in page {
        if !known.contains(&raw.event_type.as_str()) {
            continue;
        }
        let at = Some(raw.sequence);
        let _marked = Marked::at(at);
        let event = decode::decode::<S::Event>(&raw.event_type, &raw.data).map_err(|e| {
            GuestError::new(
                format!(
                    "cannot decode {} at sequence {}: {e}",
                    raw.event_type, raw.sequence
                ),
                at,
            )
        })?;
        let envelope = Envelope::from_ref(event, raw);
        let mut ctx = Ctx::new(effects, raw.sequence);
        S::handle(&mut ctx, &envelope).map_err(|message| {
            GuestError::new(
                format!(
                    "{} failed at sequence {}: {message}",
                    raw.event_type, raw.sequence
                ),
                at,
            )
        })?;
    }
    Ok(())
}

/// Marks the event being handled for the panic hook; unmarks when dropped.
struct Marked;

impl Marked {
    fn at(sequence: Option<u64>) -> Self {
        crate::engine::set_current_sequence(sequence);
        Marked
    }
}

impl Drop for Marked {
    fn drop(&mut self) {
        crate::engine::set_current_sequence(None);
    }
}

/// Checks at compile time, on every target, that `S` is a subscription.
#[doc(hidden)]
pub fn __assert_subscription<S: Subscription>() {}
