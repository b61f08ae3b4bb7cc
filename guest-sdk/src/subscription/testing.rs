//! Runs subscriptions natively against an in-memory event store, page by page as the
//! daemon does: given streams and events, then the events they emit and the
//! messages they send. A page whose `handle` fails leaves no trace, as in the daemon.
//!
//! ```
//! use refract_guest::subscription::testing::World;
//! use refract_guest::subscription::{Ctx, Expected, Subscription};
//! use refract_guest::Envelope;
//! use serde::Deserialize;
//! use serde_json::json;
//!
//! #[derive(Deserialize)]
//! enum OrderEvent { OrderPlaced { total: u64 } }
//!
//! struct Invoicer;
//!
//! impl Subscription for Invoicer {
//!     type Event = OrderEvent;
//!     const NAME: &'static str = "invoicer";
//!     const VERSION: u32 = 1;
//!
//!     fn handle(ctx: &mut Ctx<'_>, e: &Envelope<OrderEvent>) -> Result<(), String> {
//!         let OrderEvent::OrderPlaced { total } = e.event;
//!         let invoice = format!("invoice-{}", e.stream_id);
//!         ctx.emit(&invoice, Expected::NoStream, "InvoiceIssued", &json!({ "total": total }), None)?;
//!         ctx.send("https://mail.example.com/send", &json!({ "invoice": invoice }), &invoice)
//!     }
//! }
//!
//! let mut world = World::new();
//! world.given("order-1", "OrderPlaced", json!({ "total": 30 }));
//! world.run::<Invoicer>().unwrap();
//! assert_eq!(world.stream("invoice-order-1")[0].event_type, "InvoiceIssued");
//! assert_eq!(world.sent()[0].body, json!({ "invoice": "invoice-order-1" }));
//! ```

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::{Effects, Expected, NewEvent, Subscription, handle};
use crate::types::{Event, GuestError};

/// Events handed to a subscription at a time.
pub const PAGE_SIZE: usize = 100;

/// A message a subscription sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// Where it goes.
    pub url: String,
    /// Its JSON body.
    pub body: Value,
    /// Its stable key.
    pub key: String,
}

/// An in-memory event store with the subscriptions' positions and outbox.
#[derive(Debug, Clone, Default)]
pub struct World {
    events: Vec<Event>,
    streams: BTreeMap<String, Vec<usize>>,
    keys: HashMap<String, (String, u64)>,
    positions: HashMap<String, u64>,
    sent: Vec<Sent>,
    sent_keys: HashMap<String, ()>,
    settings: HashMap<String, String>,
}

impl World {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one event (no version check), as a client would.
    pub fn given(&mut self, stream: &str, event_type: &str, data: Value) -> &mut Self {
        self.push(stream, event_type, data.to_string());
        self
    }

    /// Gives the subscriptions a setting, as the daemon's config would.
    pub fn setting(&mut self, key: &str, value: &str) -> &mut Self {
        self.settings.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Every event in the store, in order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// One stream's events.
    pub fn stream(&self, id: &str) -> Vec<&Event> {
        self.streams
            .get(id)
            .map(|idx| idx.iter().map(|&i| &self.events[i]).collect())
            .unwrap_or_default()
    }

    /// Every message sent so far, once per key.
    pub fn sent(&self) -> &[Sent] {
        &self.sent
    }

    /// Hands `S` every event after its position, in pages, including the events it
    /// emits on the way, until none is left. A failing page changes nothing and its
    /// error is returned.
    pub fn run<S: Subscription>(&mut self) -> Result<(), GuestError> {
        loop {
            let from = self.positions.get(S::NAME).copied().unwrap_or(0) as usize;
            if from >= self.events.len() {
                return Ok(());
            }
            let to = (from + PAGE_SIZE).min(self.events.len());
            let page: Vec<Event> = self.events[from..to].to_vec();
            let before = self.clone();
            if let Err(e) = handle::<S>(self, &page) {
                *self = before;
                return Err(e);
            }
            self.positions.insert(S::NAME.to_owned(), to as u64);
        }
    }

    fn push(&mut self, stream: &str, event_type: &str, data: String) -> u64 {
        let indices = self.streams.entry(stream.to_owned()).or_default();
        let version = indices.len() as u64 + 1;
        indices.push(self.events.len());
        let sequence = self.events.len() as u64 + 1;
        self.events.push(Event {
            sequence,
            stream_id: stream.to_owned(),
            stream_version: version,
            event_type: event_type.to_owned(),
            data,
            metadata: "{}".to_owned(),
            tenant: None,
            timestamp: crate::testing::BASE_TIMESTAMP + sequence as i64,
        });
        version
    }

    fn version(&self, stream: &str) -> u64 {
        self.streams.get(stream).map_or(0, |s| s.len() as u64)
    }
}

impl Effects for World {
    fn emit(
        &mut self,
        stream: &str,
        expected: Expected,
        events: Vec<NewEvent>,
        idempotency_key: Option<&str>,
    ) -> Result<u64, String> {
        if let Some((first_stream, version)) = idempotency_key.and_then(|k| self.keys.get(k)) {
            if first_stream != stream {
                return Err(format!(
                    "idempotency key {:?} was already used for stream {first_stream}",
                    idempotency_key.unwrap_or_default()
                ));
            }
            return Ok(*version);
        }
        let current = self.version(stream);
        let ok = match expected {
            Expected::Any => true,
            Expected::NoStream => current == 0,
            Expected::Exact(v) => current == v,
        };
        if !ok {
            return Err(format!(
                "stream {stream} is at version {current}, expected {expected:?}"
            ));
        }
        if events.is_empty() {
            return Err("no events to emit".into());
        }
        let mut version = current;
        for e in events {
            version = self.push(stream, &e.event_type, e.data);
        }
        if let Some(k) = idempotency_key {
            self.keys.insert(k.to_owned(), (stream.to_owned(), version));
        }
        Ok(version)
    }

    fn read_stream(&mut self, stream: &str) -> Result<(u64, Vec<Event>), String> {
        let events: Vec<Event> = self.stream(stream).into_iter().cloned().collect();
        Ok((events.len() as u64, events))
    }

    fn send(&mut self, url: &str, body: String, key: &str) -> Result<(), String> {
        let body: Value =
            serde_json::from_str(&body).map_err(|e| format!("message body is not JSON: {e}"))?;
        if self.sent_keys.insert(key.to_owned(), ()).is_none() {
            self.sent.push(Sent {
                url: url.to_owned(),
                body,
                key: key.to_owned(),
            });
        }
        Ok(())
    }

    fn setting(&mut self, key: &str) -> Option<String> {
        self.settings.get(key).cloned()
    }
}
