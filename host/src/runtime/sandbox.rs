//! One sandboxed instance of a component, made on first use: memory limit, a CPU
//! deadline per call, and on a trap the instance is dropped (its state can no longer
//! be trusted) and the error says what happened and at which event.

use std::sync::Arc;

use wasmtime::component::{Instance, InstancePre};
use wasmtime::{Store, StoreLimitsBuilder, Trap};

use super::error::{BUSY, Limit, RuntimeError, RuntimeError as E};
use super::limits::{Limits, TICK};
use super::slots::{InstanceSlots, Slot};
use super::state::HostState;
use super::subscription_types::SubscriberHost;
use crate::event::Event;

/// How wasmtime's error says a guest-to-host copy went over the store's hostcall fuel
/// (its error type is private).
const FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

type MakeBindings<B> =
    Arc<dyn Fn(&mut Store<HostState>, &Instance) -> wasmtime::Result<B> + Send + Sync>;

/// Where a call is in the log: its page's first and last event, and the time the
/// guest's wall clock shows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spot {
    first: i64,
    last: i64,
    /// The page's last event's time (microseconds since the epoch).
    micros: i64,
}

impl Spot {
    /// The spot of a page; `None` for an empty one.
    pub fn of(page: &[Event]) -> Option<Self> {
        let (first, last) = (page.first()?, page.last()?);
        Some(Self {
            first: first.sequence,
            last: last.sequence,
            micros: last.timestamp,
        })
    }
}

/// A component called in a [`Sandbox`] (a projection's `Guest`, a subscription's
/// `Subscriber`): all [`Slotted`] needs of it.
pub(crate) trait Sandboxed {
    /// Its instances' typed bindings.
    type Bindings;
    /// Its sandbox, to give a slot to or to empty.
    fn sandbox_mut(&mut self) -> &mut Sandbox<Self::Bindings>;
}

/// How a running component's instance holds one of its team's slots: the daemon
/// gives it a slot before a page and takes it back after, so an idle version holds
/// no instance.
pub trait Slotted {
    /// Gives it the slot its next instance lives under.
    fn admit(&mut self, slot: Slot);
    /// Drops its instance and frees the slot (the next call makes a fresh one).
    fn release(&mut self);
}

impl<T: Sandboxed> Slotted for T {
    fn admit(&mut self, slot: Slot) {
        self.sandbox_mut().admit(slot);
    }

    fn release(&mut self) {
        self.sandbox_mut().release();
    }
}

/// An instance of one component and its typed bindings `B`.
pub(crate) struct Sandbox<B> {
    pre: InstancePre<HostState>,
    component: String,
    limits: Limits,
    make: MakeBindings<B>,
    instance: Option<(Store<HostState>, B)>,
    /// The team's slots: with them, an instance is made only under a slot.
    slots: Option<InstanceSlots>,
    /// The slot the instance lives under (given by the caller, or taken if free).
    slot: Option<Slot>,
}

impl<B> Sandbox<B> {
    /// A sandbox that instantiates `pre` and looks its bindings up with `make`.
    pub fn new(
        pre: InstancePre<HostState>,
        component: String,
        limits: Limits,
        make: impl Fn(&mut Store<HostState>, &Instance) -> wasmtime::Result<B> + Send + Sync + 'static,
    ) -> Self {
        Self {
            pre,
            component,
            limits,
            make: Arc::new(make),
            instance: None,
            slots: None,
            slot: None,
        }
    }

    /// The deadline of its next calls.
    pub fn set_call_timeout(&mut self, timeout: std::time::Duration) {
        self.limits.call_timeout_ms = u64::try_from(timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
    }

    /// Makes instances only under one of `slots` from now on.
    pub fn set_slots(&mut self, slots: Option<InstanceSlots>) {
        self.slots = slots;
    }

    /// The team's slots, if instances are budgeted.
    pub fn slots(&self) -> Option<&InstanceSlots> {
        self.slots.as_ref()
    }

    /// Gives the sandbox a slot for its next instance (one it holds already stays).
    pub fn admit(&mut self, slot: Slot) {
        if self.slot.is_none() {
            self.slot = Some(slot);
        }
    }

    /// Drops the instance and gives its slot back: an idle version holds nothing.
    pub fn release(&mut self) {
        self.instance = None;
        self.slot = None;
    }

    /// Runs one call under the deadline; `spot` (the page's first and last
    /// sequence) goes into the error of a trap and sets the guest's clocks and random
    /// seed. A span records the call and the fault.
    pub fn call<R>(
        &mut self,
        name: &'static str,
        spot: Option<Spot>,
        f: impl FnOnce(&mut Store<HostState>, &B) -> wasmtime::Result<R>,
    ) -> Result<R, RuntimeError> {
        let span = tracing::debug_span!(
            "guest_call",
            component = %self.component,
            call = name,
            fault = tracing::field::Empty
        );
        let _entered = span.enter();
        let ticks = self.deadline_ticks();
        super::watchdog::call_started(&self.component, self.limits.call_timeout());
        let result = match self.instance() {
            Ok((store, bindings)) => {
                store.data_mut().clock.start(ticks);
                store.set_epoch_deadline(1);
                let (first, micros) = spot.map_or((None, 0), |s| (Some(s.first), s.micros));
                let data = store.data();
                data.clocks.begin_call(&data.component, first, micros);
                let out = f(store, bindings);
                store.data_mut().clock.end();
                out.map_err(|err| self.trapped(err, name, spot))
            }
            Err(e) => Err(e),
        };
        if super::watchdog::call_ended() {
            // The host gave up waiting for this call: the instance is not trusted.
            self.instance = None;
        }
        if let Err(e) = &result {
            span.record("fault", tracing::field::debug(e.fault()));
        }
        result
    }

    /// Like [`call`](Self::call), with `host` answering the subscription imports
    /// during the call only.
    pub fn call_with<R>(
        &mut self,
        host: Box<dyn SubscriberHost>,
        name: &'static str,
        spot: Option<Spot>,
        f: impl FnOnce(&mut Store<HostState>, &B) -> wasmtime::Result<R>,
    ) -> Result<R, RuntimeError> {
        if let Ok((store, _)) = self.instance() {
            store.data_mut().subscriber = Some(host);
        }
        let result = self.call(name, spot, f);
        if let Some((store, _)) = self.instance.as_mut() {
            store.data_mut().subscriber = None;
        }
        result
    }

    /// The limits the instance runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The guest's own error, as the runtime reports it.
    /// The guest's text in `message` is clipped (see [`super::guest_text`]).
    pub fn guest_error(&self, message: String, event_sequence: Option<i64>) -> RuntimeError {
        E::guest(self.component.clone(), event_sequence, &message)
    }

    fn deadline_ticks(&self) -> u64 {
        (self.limits.call_timeout().as_millis() / TICK.as_millis()).max(1) as u64
    }

    fn instance(&mut self) -> Result<&mut (Store<HostState>, B), RuntimeError> {
        if self.instance.is_none() {
            if let Some(slots) = &self.slots
                && self.slot.is_none()
            {
                self.slot = Some(slots.try_acquire()?);
            }
            let limits = StoreLimitsBuilder::new()
                .memory_size(self.limits.memory_bytes)
                .trap_on_grow_failure(true)
                .build();
            let mut store = Store::new(
                self.pre.engine(),
                HostState::new(self.component.clone(), limits),
            );
            store.limiter(|s| &mut s.limits);
            // Called at every tick of a call: counts the ticks it ran (waiting for
            // its turn in the long lane excluded) against the deadline.
            store.epoch_deadline_callback(|mut ctx| {
                if ctx.data_mut().clock.tick() {
                    Ok(wasmtime::UpdateDeadline::Continue(1))
                } else {
                    Err(Trap::Interrupt.into())
                }
            });
            // Start functions run during instantiation: they get a call's budget too.
            store.data_mut().clock.start(self.deadline_ticks());
            store.set_epoch_deadline(1);
            let failed = |e: wasmtime::Error| {
                // Every slot of the shared pool taken is the host's condition (wait
                // and retry), never the guest's fault.
                if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
                    .is_some()
                {
                    return E::Host(format!(
                        "{BUSY}: component {} cannot be instantiated now: {e:#}",
                        self.component
                    ));
                }
                E::guest(
                    self.component.clone(),
                    None,
                    &format!("cannot be instantiated: {e:#}"),
                )
            };
            let instance = self.pre.instantiate(&mut store).map_err(failed)?;
            let bindings = (self.make)(&mut store, &instance).map_err(failed)?;
            store.data_mut().clock.end();
            self.instance = Some((store, bindings));
        }
        self.instance
            .as_mut()
            .ok_or_else(|| E::Host("instance vanished".into()))
    }

    /// Turns a trap into an error naming the event (from the guest's panic report
    /// when it sent one) and drops the instance.
    fn trapped(&mut self, err: wasmtime::Error, call: &str, spot: Option<Spot>) -> RuntimeError {
        let (report, fuel) = match self.instance.take() {
            Some((store, _)) => {
                let fuel = store.hostcall_fuel();
                (store.into_data().panic, fuel)
            }
            None => (None, 0),
        };
        if let Some(p) = report {
            return self.guest_error(format!("panicked: {}", p.message), p.event_sequence);
        }
        let what = match err.downcast_ref::<Trap>() {
            // Wasmtime refused to copy more than the call's transfer budget from the
            // guest (checked before the host allocates it).
            None if format!("{err:#}").contains(FUEL_EXHAUSTED) => format!(
                "{}: {call} handed the host more than {fuel} bytes at once (a result or \
                 a host call's arguments); the limit is {fuel}",
                Limit::Result.phrase()
            ),
            Some(Trap::Interrupt) => format!(
                "{} of {} ms per call",
                Limit::Cpu.phrase(),
                self.limits.call_timeout_ms
            ),
            Some(Trap::StackOverflow) => format!(
                "{} of {} KiB (unbounded recursion?)",
                Limit::Stack.phrase(),
                self.limits.max_stack_bytes >> 10
            ),
            Some(trap) => format!("trapped: {trap}"),
            // A failed memory.grow traps with an error (trap_on_grow_failure).
            None if format!("{err:#}").contains("growing memory") => format!(
                "{} of {} MiB",
                Limit::Memory.phrase(),
                self.limits.memory_bytes >> 20
            ),
            None => format!("trapped: {err:#}"),
        };
        // Where it was: the page, or the call when it had none (`describe`).
        let page = spot
            .map(|s| format!(" (page of events {}..={})", s.first, s.last))
            .unwrap_or_else(|| format!(" (in {call})"));
        self.guest_error(format!("{what}{page}"), None)
    }
}
