//! WIT `refract:subscription@1.1.0`, the latest: its bindings, its host imports, and
//! its types converted into the runtime's (`subscription_types`, `event`). 1.1.0 only
//! adds to 1.0.0 (`settings`, `describe-settings`, `read-stream-page`), so 1.0.0's
//! bindings use this version's types, and the imports both versions share are
//! written here once ([`impl_subscription_host!`]).

use super::state::HostState;
use super::subscription_types::{
    EmittedEvent, StartPosition, SubscriberHost, SubscriptionDescriptor,
};
use super::types::WitVersion;
use crate::event::Event;
use crate::identity::ExpectedVersion;

super::bindings::bind_wit!(subscriber "1.1.0" at "../wit/subscription-1.1.0");

impl SubscriptionDescriptor {
    /// The runtime's descriptor of a guest of `wit_version`, from what it said in
    /// 1.1.0's terms.
    pub(crate) fn from_wit((d, settings): Described, wit_version: WitVersion) -> Self {
        Self {
            name: d.name,
            version: d.version,
            event_types: d.event_types,
            start: d.start.into(),
            effects_during_catch_up: d.effects_during_catch_up,
            max_page_size: settings.max_page_size,
            wit_version,
        }
    }
}

impl From<types::StartPosition> for StartPosition {
    fn from(start: types::StartPosition) -> Self {
        match start {
            types::StartPosition::Beginning => Self::Beginning,
            types::StartPosition::Now => Self::Now,
            types::StartPosition::AfterSequence(s) => {
                Self::AfterSequence(i64::try_from(s).unwrap_or(i64::MAX))
            }
            types::StartPosition::AtTime(t) => Self::AtTime(t),
        }
    }
}

/// The guest's expectation (WIT `expected-version`, the same in every version) as
/// the host's one type.
impl From<types::ExpectedVersion> for ExpectedVersion {
    fn from(expected: types::ExpectedVersion) -> Self {
        match expected {
            types::ExpectedVersion::Any => Self::Any,
            // Version 0 is a stream with no events, one that does not exist (as the
            // API's `expected_version: 0`): as `exact(0)` the emit would pass the
            // host's check and then fail at commit, where no stream row matches.
            types::ExpectedVersion::NoStream | types::ExpectedVersion::Exact(0) => Self::NoStream,
            types::ExpectedVersion::Exact(v) => Self::Exact(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emit_expecting_version_0_expects_no_stream() {
        let got = ExpectedVersion::from(types::ExpectedVersion::Exact(0));
        assert_eq!(got, ExpectedVersion::NoStream);
        let got = ExpectedVersion::from(types::ExpectedVersion::Exact(3));
        assert_eq!(got, ExpectedVersion::Exact(3));
    }
}

impl From<types::NewEvent> for EmittedEvent {
    fn from(e: types::NewEvent) -> Self {
        Self {
            event_type: e.event_type,
            data: e.data,
            metadata: e.metadata,
        }
    }
}

/// An event as the subscription world's record (its fields moved).
impl From<Event> for types::Event {
    fn from(e: Event) -> Self {
        Self {
            sequence: e.sequence as u64,
            stream_id: e.stream_id,
            stream_version: e.stream_version,
            event_type: e.event_type,
            data: e.data,
            metadata: e.metadata,
            tenant: e.tenant,
            timestamp: e.timestamp,
        }
    }
}

/// The guest's own error from `handle`: its message and the event it names.
pub(crate) fn guest_error(e: types::GuestError) -> (String, Option<i64>) {
    (
        e.message,
        e.event_sequence.and_then(|s| i64::try_from(s).ok()),
    )
}

const OUTSIDE_A_PAGE: &str = "only possible while handling a page";

/// The imports both versions share, converted from the (shared) generated types.
impl HostState {
    pub(crate) fn sub_read_stream(
        &mut self,
        stream_id: String,
    ) -> Result<types::StreamState, String> {
        let (version, events) = self.page_host("read-stream")?.read_stream(stream_id)?;
        Ok(stream_state(version, events))
    }

    pub(crate) fn page_host(&mut self, call: &str) -> Result<&mut Box<dyn SubscriberHost>, String> {
        self.subscriber
            .as_mut()
            .ok_or_else(|| format!("{call} is {OUTSIDE_A_PAGE}"))
    }
}

fn stream_state(version: u64, events: Vec<Event>) -> types::StreamState {
    types::StreamState {
        version,
        events: events.into_iter().map(types::Event::from).collect(),
    }
}

/// Implements one version's `host` trait (the argument is the module path of its
/// `host` bindings) with the shared functions above; `$more` are the version's own
/// functions.
macro_rules! impl_subscription_host {
    ($($host:ident)::+ { $($more:tt)* }) => {
        impl $($host)::+::Host for $crate::runtime::state::HostState {
            $crate::runtime::host::host_fns!($($host)::+);

            fn emit(
                &mut self,
                stream_id: String,
                expected: $crate::runtime::subscriber_v1_1::types::ExpectedVersion,
                events: Vec<$crate::runtime::subscriber_v1_1::types::NewEvent>,
                idempotency_key: Option<String>,
            ) -> Result<u64, String> {
                self.page_host("emit")?.emit($crate::runtime::subscription_types::Emit {
                    stream: stream_id,
                    expected: expected.into(),
                    events: events.into_iter().map(Into::into).collect(),
                    idempotency_key,
                })
            }

            fn read_stream(
                &mut self,
                stream_id: String,
            ) -> Result<$crate::runtime::subscriber_v1_1::types::StreamState, String> {
                self.sub_read_stream(stream_id)
            }

            fn setting(&mut self, key: String) -> Option<String> {
                self.subscriber.as_mut().and_then(|h| h.setting(key))
            }

            fn send(&mut self, url: String, body: String, key: String) -> Result<(), String> {
                self.page_host("send")?.send(url, body, key)
            }

            $($more)*
        }
    };
}

pub(crate) use impl_subscription_host;

impl_subscription_host!(bindings::refract::subscription::host {
    fn read_stream_page(
        &mut self,
        stream_id: String,
        from_version: u64,
        limit: u32,
    ) -> Result<types::StreamState, String> {
        let (version, events) = self
            .page_host("read-stream-page")?
            .read_stream_page(stream_id, from_version, limit)?;
        Ok(stream_state(version, events))
    }
});
