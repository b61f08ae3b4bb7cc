//! refract: a daemon that owns an event store and its read models, and runs
//! projection logic as sandboxed WebAssembly components.
//!
//! The modules follow the data: [`store`] (events, documents, progress; SQL lives
//! there only), [`runtime`] (wasmtime; knows nothing of SQL), [`daemon`] (agents that
//! join the two), [`deploy`] (the registry of components), [`service`] (the one
//! service type), [`api`] (HTTP) and [`cli`]. Under them all, [`identity`] holds the
//! rules for names, ids, tenants and expected versions, and [`event`] the one event
//! record the store and the runtime share, both importing nothing.

pub mod api;
pub mod cli;
pub mod config;
mod config_bounds;
pub mod daemon;
pub mod deploy;
pub mod event;
pub mod identity;
pub mod outbox;
pub mod rate;
pub mod retry;
pub mod runtime;
pub mod service;
pub mod store;
pub mod teams;

pub use config::Config;
pub use service::{Refract, ServiceError};
