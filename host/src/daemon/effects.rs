//! What a subscription's `emit`, `read-stream`, `send` and `setting` do during one
//! page: emits are charged to the page's emit budget (`emit_budget.rs`), checked
//! against the store plus the page's earlier emits and gathered for the page's
//! transaction (held once: reads of this page's emits are made from them, `effects/read.rs`); messages are checked against the team's
//! grants and gathered for the outbox. While side effects are held (a new version
//! catching up) emits and sends succeed for the guest but are dropped and counted.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::de::IgnoredAny;
use tokio::runtime::Handle;

mod read;

use super::emit_budget::EmitTally;
use crate::outbox::Grants;
use crate::runtime::{Emit, Event, SubscriberHost};
use crate::store::subscription::NewMessage;
use crate::store::{AppendRequest, ExpectedVersion, NewEvent, Store, StoreError, StreamId};

/// What a page gathered, taken by the agent after `handle` returns.
#[derive(Debug, Default)]
pub(crate) struct Gathered {
    pub emits: Vec<AppendRequest>,
    pub messages: Vec<NewMessage>,
    /// Emits and sends dropped because effects were held.
    pub held: u64,
    /// Bytes of the page's outbox messages so far (body, URL and key).
    message_bytes: usize,
    /// A store failure the guest was told about: the page failed because of the
    /// host, not the guest, and is retried without counting against it.
    pub host_error: Option<String>,
    /// The page went over its emit budget: it fails as the guest's error, whatever
    /// the guest made of the refusal, and every later emit is refused.
    pub over_budget: Option<String>,
    /// Stream versions after this page's emits, and which of `emits` went to it.
    overlay: HashMap<String, (u64, Vec<usize>)>,
    /// Idempotency keys used by this page's emits.
    keys: HashMap<String, (String, u64)>,
}

/// What the page's effects need; shared by every page of one agent.
#[derive(Clone)]
pub(crate) struct EffectsEnv {
    pub store: Arc<dyn Store>,
    pub runtime: Handle,
    /// The subscription's name: message ids are `<name>/<key>`, the same for every
    /// version, so a new version never re-sends what an old one sent.
    pub name: String,
    pub team: String,
    /// The streams its team may emit to and read.
    pub access: crate::teams::StreamAccess,
    pub grants: Arc<Grants>,
    pub settings: Arc<BTreeMap<String, String>>,
    /// The largest event (data and metadata bytes) an emit may carry.
    pub max_event_bytes: usize,
    /// What one page may emit.
    pub emit_budget: super::EmitBudget,
    /// Every team's append rate (emits wait for theirs before the commit).
    pub rates: Arc<crate::rate::AppendRates>,
}

/// One page's effects, lent to the guest for its `handle` call.
pub(crate) struct PageEffects {
    env: EffectsEnv,
    held: bool,
    gathered: Arc<Mutex<Gathered>>,
    tally: EmitTally,
}

impl PageEffects {
    /// Effects for a page of `page_events` events; the agent keeps `gathered` to
    /// commit afterwards.
    pub fn new(env: EffectsEnv, held: bool, page_events: usize) -> (Self, Arc<Mutex<Gathered>>) {
        let gathered = Arc::new(Mutex::new(Gathered::default()));
        let effects = Self {
            tally: EmitTally::new(&env.emit_budget, page_events),
            env,
            held,
            gathered: gathered.clone(),
        };
        (effects, gathered)
    }

    fn gathered(&self) -> std::sync::MutexGuard<'_, Gathered> {
        self.gathered.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs a store call for `call`. The store's `Invalid` is the guest's error (the
    /// call's arguments are the guest's); any other failure is the host's.
    fn block_on<T>(
        &self,
        call: &str,
        f: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, String> {
        self.env.runtime.block_on(f).map_err(|e| match e {
            StoreError::Invalid(m) => format!("{call}: {m}"),
            e => {
                let message = format!("the store failed: {e}");
                self.gathered().host_error = Some(message.clone());
                message
            }
        })
    }

    /// The stream's version now: this page's emits, else the store's.
    fn version_of(&self, stream: &StreamId) -> Result<u64, String> {
        if let Some((v, _)) = self.gathered().overlay.get(stream.as_str()) {
            return Ok(*v);
        }
        let store = self.env.store.clone();
        let id = stream.clone();
        self.block_on("emit", async move { store.stream_version(&id).await })
    }
}

impl SubscriberHost for PageEffects {
    fn emit(&mut self, emit: Emit) -> Result<u64, String> {
        let Emit {
            stream,
            expected,
            events,
            idempotency_key,
        } = emit;
        if let Some(why) = &self.gathered().over_budget {
            return Err(why.clone());
        }
        if let Err(why) = self.tally.charge(&stream, &events) {
            self.gathered().over_budget = Some(why.clone());
            return Err(why);
        }
        let id = StreamId::new(&stream).map_err(|e| format!("emit: stream_id: {e}"))?;
        if !self.env.access.may_append(&stream) {
            let team = &self.env.team;
            return Err(format!(
                "emit to {stream}: team {team} may not append to this stream (config: \
                 [teams.{team}] append, append_streams)"
            ));
        }
        super::emit_check::check_emit(
            &stream,
            &events,
            idempotency_key.as_deref(),
            self.env.max_event_bytes,
        )?;
        if let Some(key) = &idempotency_key {
            let earlier = self.gathered().keys.get(key).cloned();
            let earlier = match earlier {
                Some(found) => Some(found),
                None => {
                    let store = self.env.store.clone();
                    let (team, k) = (self.env.team.clone(), key.clone());
                    self.block_on(
                        "emit",
                        async move { store.idempotency_key(&team, &k).await },
                    )?
                    .map(|(s, r)| (s, r.stream_version))
                }
            };
            // Done before (a replay, or a retried page): nothing to append again.
            if let Some(version) = crate::store::replay(key, &stream, earlier)
                .map_err(|e| format!("emit to {stream}: {e}"))?
            {
                return Ok(version);
            }
        }
        let current = self.version_of(&id)?;
        if !expected.accepts(current) {
            return Err(format!(
                "emit to {stream}: the stream is at version {current}, expected {expected:?}"
            ));
        }
        let n = events.len() as u64;
        let events_len = events.len();
        if self.held {
            self.gathered().held += 1;
            return Ok(current + n);
        }
        let mut g = self.gathered();
        let mut new_events: Vec<NewEvent> = events
            .into_iter()
            .map(|e| NewEvent {
                event_type: e.event_type,
                data: e.data,
                metadata: e.metadata.unwrap_or_else(|| "{}".into()),
            })
            .collect();
        // Keyless emits in a row to one stream commit as one append (one statement,
        // not one per emit): the first's pinned version checks them all.
        let index = g.emits.len();
        let joinable = idempotency_key.is_none()
            && g.emits.last().is_some_and(|last| {
                last.idempotency_key.is_none()
                    && last.stream == id
                    && last.events.len() + events_len <= super::emit_check::MAX_EVENTS_PER_EMIT
            });
        let joined = match g.emits.last_mut() {
            Some(last) if joinable => {
                last.events.append(&mut new_events);
                true
            }
            _ => false,
        };
        if !joined {
            g.emits.push(AppendRequest {
                stream: id,
                // Pinned to the version checked here: the commit checks it again.
                expected: if current == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(current)
                },
                idempotency_key: idempotency_key.clone(),
                tenant: None,
                team: self.env.team.clone(),
                events: new_events,
            });
        }
        let entry = g
            .overlay
            .entry(stream.clone())
            .or_insert((current, Vec::new()));
        entry.0 += n;
        if !joined {
            entry.1.push(index);
        }
        let version = entry.0;
        if let Some(key) = idempotency_key {
            g.keys.insert(key, (stream, version));
        }
        Ok(version)
    }

    fn read_stream(&mut self, stream: String) -> Result<(u64, Vec<Event>), String> {
        self.read_whole(stream)
    }

    fn read_stream_page(
        &mut self,
        stream: String,
        from_version: u64,
        limit: u32,
    ) -> Result<(u64, Vec<Event>), String> {
        self.read_window(stream, from_version, limit)
    }

    fn send(&mut self, url: String, body: String, key: String) -> Result<(), String> {
        if let Some(why) = self.env.grants.refusal(&self.env.team, &url) {
            return Err(format!("send: {why}"));
        }
        if let Some(why) = self.env.grants.body_refusal(body.len()) {
            return Err(format!("send to {url}: {why}"));
        }
        serde_json::from_str::<IgnoredAny>(&body)
            .map_err(|e| format!("send to {url}: the body is not JSON: {e}"))?;
        if key.is_empty() || key.len() > 200 {
            return Err(format!("send to {url}: the key must be 1 to 200 bytes"));
        }
        let mut g = self.gathered();
        if self.held {
            g.held += 1;
            return Ok(());
        }
        let total = g.message_bytes + body.len() + url.len() + key.len();
        if let Some(why) = self.env.grants.page_refusal(total) {
            return Err(format!("send to {url}: {why}"));
        }
        g.message_bytes = total;
        g.messages.push(NewMessage {
            id: format!("{}/{key}", self.env.name),
            url,
            body,
            event_sequence: None,
        });
        Ok(())
    }

    fn setting(&mut self, key: String) -> Option<String> {
        self.env.settings.get(&key).cloned()
    }
}
