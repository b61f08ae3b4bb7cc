//! Listens to refract's own log events: an agent's "caught up" line carries where a
//! rebuild's time went, a "deployed" line whether the artifact cache was used.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// The messages kept.
const KEPT: &[&str] = &["caught up", "deployed"];

/// One captured log event: its message and fields.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    /// The log message.
    pub message: String,
    /// Its fields, numbers as numbers.
    pub fields: BTreeMap<String, Value>,
}

impl Captured {
    /// A field as text (strings without quotes).
    pub fn text(&self, name: &str) -> Option<String> {
        self.fields.get(name).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}

/// The shared list of captured events; clone it to read what the layer saw.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    seen: Arc<Mutex<Vec<Captured>>>,
}

impl Capture {
    /// Forgets everything captured so far.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Waits up to `timeout` for an event with this message whose `field` is `value`.
    pub async fn wait_for(
        &self,
        message: &str,
        field: &str,
        value: &str,
        timeout: Duration,
    ) -> Option<Captured> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self
                .lock()
                .iter()
                .rev()
                .find(|c| c.message == message && c.text(field).as_deref() == Some(value))
                .cloned();
            if found.is_some() || Instant::now() >= deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Captured>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut c = Captured::default();
        event.record(&mut Visitor(&mut c));
        if KEPT.contains(&c.message.as_str()) {
            self.lock().push(c);
        }
    }
}

struct Visitor<'a>(&'a mut Captured);

impl Visit for Visitor<'_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.fields.insert(field.name().into(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.fields.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.fields.insert(field.name().into(), value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.fields.insert(field.name().into(), value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.0.message = text;
        } else {
            self.0.fields.insert(field.name().into(), text.into());
        }
    }
}
