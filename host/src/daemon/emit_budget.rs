//! A subscription's emit budget: how many events, and how many bytes of them, one
//! page may emit, charged as the guest emits (in the host call) so the host never
//! holds more than the budget, and the commit of a page's emits (one transaction
//! holding the writer) is bounded by it. The per-event caps scale with the page:
//! the host does not see which of the page's events an emit belongs to, so a page of
//! `n` events may emit `n` times the per-event caps (never more than the page caps).
//! A page of several events over its budget is read again smaller (the host chose
//! its size); only one event's page over it is the guest's error, naming the event.

use serde::Deserialize;

use crate::runtime::EmittedEvent;

/// Caps on what one page of a subscription may emit (`[emits]` for the daemon,
/// `[teams.<name>.emits]` for a team).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmitBudget {
    /// Events emitted per handled event.
    pub max_emits_per_event: usize,
    /// Bytes (data and metadata) emitted per handled event.
    pub max_emit_bytes_per_event: usize,
    /// Events emitted per page.
    pub max_emits_per_page: usize,
    /// Bytes (data and metadata) emitted per page.
    pub max_emit_bytes_per_page: usize,
}

impl Default for EmitBudget {
    fn default() -> Self {
        Self {
            max_emits_per_event: 1_000,
            max_emit_bytes_per_event: 8 << 20,
            max_emits_per_page: 2_000,
            max_emit_bytes_per_page: 16 << 20,
        }
    }
}

/// What one page has emitted so far against its budget.
#[derive(Debug)]
pub(crate) struct EmitTally {
    events: usize,
    bytes: usize,
    max_events: usize,
    max_bytes: usize,
    /// Which caps apply, for the message: per event (a small page) or per page.
    per_event: (bool, bool),
    page_events: usize,
}

impl EmitTally {
    /// A tally for a page of `page_events` events under `budget`.
    pub fn new(budget: &EmitBudget, page_events: usize) -> Self {
        let n = page_events.max(1);
        let by_event = budget.max_emits_per_event.saturating_mul(n);
        let bytes_by_event = budget.max_emit_bytes_per_event.saturating_mul(n);
        Self {
            events: 0,
            bytes: 0,
            max_events: by_event.min(budget.max_emits_per_page),
            max_bytes: bytes_by_event.min(budget.max_emit_bytes_per_page),
            per_event: (
                by_event < budget.max_emits_per_page,
                bytes_by_event < budget.max_emit_bytes_per_page,
            ),
            page_events: n,
        }
    }

    /// Charges one emit's events; past the budget, the error names the count or the
    /// bytes, the limit and the knob that sets it (nothing is charged then).
    pub fn charge(&mut self, stream: &str, events: &[EmittedEvent]) -> Result<(), String> {
        let size: usize = events
            .iter()
            .map(|e| e.data.len() + e.metadata.as_ref().map_or(2, String::len))
            .sum();
        let (events_after, bytes_after) = (
            self.events.saturating_add(events.len()),
            self.bytes.saturating_add(size),
        );
        let scope = |per_event: bool, knob: &str| {
            if per_event {
                format!(
                    "{} handled event(s) × max_{knob}_per_event",
                    self.page_events
                )
            } else {
                format!("max_{knob}_per_page")
            }
        };
        if events_after > self.max_events {
            return Err(format!(
                "emit to {stream}: emit budget exceeded: {events_after} events emitted by \
                 a page of {} event(s); the limit is {} ({})",
                self.page_events,
                self.max_events,
                scope(self.per_event.0, "emits")
            ));
        }
        if bytes_after > self.max_bytes {
            return Err(format!(
                "emit to {stream}: emit budget exceeded: {bytes_after} bytes emitted by a \
                 page of {} event(s); the limit is {} bytes ({})",
                self.page_events,
                self.max_bytes,
                scope(self.per_event.1, "emit_bytes")
            ));
        }
        (self.events, self.bytes) = (events_after, bytes_after);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(bytes: usize) -> EmittedEvent {
        EmittedEvent {
            event_type: "T".into(),
            data: "x".repeat(bytes),
            metadata: Some(String::new()),
        }
    }

    #[test]
    fn defaults_refuse_the_flood_and_the_big_emits() {
        let budget = EmitBudget::default();
        // 100,000 emits from one event: refused at the 1,001st.
        let mut one = EmitTally::new(&budget, 1);
        let refused = (1..=100_000).find(|_| one.charge("s", &[ev(10)]).is_err());
        assert_eq!(refused, Some(1_001));
        let e = one.charge("s", &[ev(10)]).unwrap_err();
        assert!(
            e.contains("1001 events")
                && e.contains("the limit is 1000 (1 handled event(s) × max_emits_per_event)"),
            "{e}"
        );
        // 300 events of 1 MiB in a page of many events: refused past 16 MiB.
        let mut page = EmitTally::new(&budget, 5_000);
        let refused = (1..=300).find(|_| page.charge("s", &[ev(1 << 20)]).is_err());
        assert_eq!(refused, Some(17));
        let e = page.charge("s", &[ev(1 << 20)]).unwrap_err();
        assert!(
            e.contains(&format!(
                "the limit is {} bytes (max_emit_bytes_per_page)",
                16 << 20
            )),
            "{e}"
        );
        // One event of a one-event page: 8 MiB.
        let mut one = EmitTally::new(&budget, 1);
        assert_eq!(
            (1..=300).find(|_| one.charge("s", &[ev(1 << 20)]).is_err()),
            Some(9)
        );
    }

    #[test]
    fn a_page_may_emit_its_events_times_the_per_event_caps_up_to_the_page_caps() {
        let budget = EmitBudget {
            max_emits_per_event: 2,
            max_emit_bytes_per_event: 100,
            max_emits_per_page: 5,
            max_emit_bytes_per_page: 1_000,
        };
        let mut two = EmitTally::new(&budget, 2);
        assert!(two.charge("s", &[ev(1), ev(1), ev(1), ev(1)]).is_ok());
        assert!(two.charge("s", &[ev(1)]).is_err(), "2 × 2 events");
        let mut many = EmitTally::new(&budget, 100);
        assert!(many.charge("s", &vec![ev(1); 5]).is_ok());
        let e = many.charge("s", &[ev(1)]).unwrap_err();
        assert!(e.contains("max_emits_per_page"), "{e}");
        let mut bytes = EmitTally::new(&budget, 1);
        let e = bytes.charge("s", &[ev(101)]).unwrap_err();
        assert!(
            e.contains("101 bytes") && e.contains("limit is 100 bytes"),
            "{e}"
        );
        assert!(
            bytes.charge("s", &[ev(100)]).is_ok(),
            "nothing charged on refusal"
        );
    }
}
