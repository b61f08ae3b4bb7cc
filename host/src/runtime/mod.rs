//! The WebAssembly runtime: loads components, validates them, and calls them a page
//! at a time inside a sandbox. It knows nothing of SQL, nor of the store's or the
//! daemon's types: it speaks its own (an [`Event`], a [`Descriptor`], a
//! [`SubscriberHost`]), and the daemon, which joins it to the store, converts.
//!
//! # Layers
//!
//! The files form layers, bottom to top. A file imports from its own layer or
//! below, never above; within a layer, only files listed before it. Outside the
//! runtime it imports only `identity` (the one rule for names, ids, namespaces and
//! expected versions, shared with the store and the API: it tells which team a
//! component's instances run for) and `event` (the one event record, which the store
//! reads and the runtime hands to guests as it is).
//!
//! 1. **Types and limits**, the runtime's own vocabulary, in the latest WIT
//!    version's terms: `guest_text` (clipping what guests say), `error`
//!    ([`RuntimeError`], [`Fault`], [`Limit`]), `types` (a
//!    projection's descriptor, slices, document changes), `subscription_types` (a
//!    subscription's descriptor, emits, and the [`SubscriberHost`] trait the daemon
//!    answers its imports with), `limits` ([`Limits`] and the fixed bounds on
//!    results).
//! 2. **Instance state**: what each wasmtime store holds, and the process-wide
//!    machinery it uses. `log_budget`, `output` (guest stdout and stderr into the
//!    log, capped), `clock` (virtual clocks and seeded randomness), `watchdog` (the
//!    host's own deadline on a call), `cpu` (a call's ticks, long-call lanes, the
//!    compile lane), `state` (`HostState`: WASI without grants, the memory limiter,
//!    a guest's panic report), `nonblocking` (WASI polls that never wait), `host`
//!    (the `log` and `panicked` imports every WIT version shares). This sits below
//!    the WIT versions because their bindings implement their host imports on the
//!    store's data (`HostState`), as wasmtime's bindgen requires.
//! 3. **WIT versions**, one file per world and version, each with its bindings, its
//!    host imports and `From` conversions into layer 1's types: `since_v1_2`, `since_v1_1` and
//!    `since_v1_0` (the projector world), `subscriber_v1_1` and `subscriber_v1_0`
//!    (the subscriber world). Each version only adds to the types of the one before,
//!    so an older file binds the latest's types and imports the latest's file, never
//!    the reverse. `bindings` holds the
//!    macro each of them binds its world with (the bindgen options and linker entry
//!    they share). `calls` holds the page
//!    calls (`slice`, `apply`) every projector version shares, lowered straight from
//!    [`Event`]s; `versions` and `subscriber_versions` pick a component's version
//!    and dispatch to it, so nothing above names a version's generated types.
//! 4. **Sandbox**: `slots` (instance slots per team, and those of `describe`) and
//!    `sandbox` (one instance, made on first use under a slot, memory limit, CPU
//!    deadline, dropped on a trap, which becomes an error naming the limit and the
//!    event). Generic over a version's bindings: it imports no layer 3 file.
//! 5. **Components**: `loaded` ([`LoadedComponent`], [`LoadedSubscription`],
//!    [`Loaded`]: compiled, validated, linked), `guest` ([`Guest`], a projection
//!    called a page at a time, its results checked) and `subscriber`
//!    ([`Subscriber`], a subscription handed a page with a [`SubscriberHost`]).
//! 6. **Façade**: `engine` ([`Runtime`]: the process's engine, the one linker with
//!    every version's host imports, the compiled-artifact cache) and `load`
//!    (`Runtime::load`, `Runtime::load_any`: compile, tell the kind and version,
//!    link, describe, validate). This file only declares the modules and re-exports
//!    the public API.

// 1. Types and limits.
mod error;
pub mod guest_text;
mod limits;
mod subscription_types;
mod types;
// 2. Instance state.
mod clock;
mod cpu;
mod host;
mod log_budget;
mod nonblocking;
mod output;
mod state;
pub mod watchdog;
// 3. WIT versions.
mod bindings;
mod calls;
pub mod lookup;
mod since_v1_0;
mod since_v1_1;
mod since_v1_2;
mod subscriber_v1_0;
mod subscriber_v1_1;
mod subscriber_versions;
mod versions;
// 4. Sandbox.
mod sandbox;
mod slots;
// 5. Components.
mod guest;
mod loaded;
mod subscriber;
// 6. Façade.
mod engine;
mod load;

pub use crate::event::Event;
pub use engine::{DEFAULT_POOL_INSTANCES, MIN_STACK_BYTES, Runtime};
pub use error::{Fault, Limit, RuntimeError};
pub use guest::Guest;
pub use limits::{DEFAULT_PAGE_SIZE, Limits};
pub use loaded::{Compiled, Loaded, LoadedComponent, LoadedSubscription};
pub use sandbox::Slotted;
pub use slots::{DEFAULT_TEAM_INSTANCES, DESCRIBE_SLOTS, InstanceSlots, Slot};
pub use subscriber::Subscriber;
pub use subscriber_versions::{SUBSCRIPTION_EXPORT_V1_0, SUBSCRIPTION_EXPORT_V1_1};
pub use subscription_types::{
    Emit, EmittedEvent, StartPosition, SubscriberHost, SubscriptionDescriptor,
};
pub use types::{
    ComponentKind, Descriptor, DocChange, DocInput, DocumentMode, LIFECYCLE_OPTION, Lifecycle,
    Slice, WitVersion, slice_by_stream,
};
