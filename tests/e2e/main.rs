//! End-to-end tests: the real `refract` binary, real components compiled from
//! `sample-projections/`, a real SQLite file in a temporary directory.

mod api;
mod cargo_component;
mod common;
mod data_path;
mod dev;
mod doc_list;
mod faults;
mod helpdesk;
mod hostile;
mod hostile_bounds;
mod hostile_emits;
mod hostile_outbox;
mod hostile_perms;
mod hostile_pool;
mod hostile_sandbox;
mod hostile_streams;
mod live;
mod multi_stream;
mod pg_order;
mod poison;
mod read_after;
mod reads;
mod reads_bounded;
mod rebuild_stream;
mod restart;
mod runtime;
mod shadow;
mod side_effects;
mod subscription_bounds;
mod subscription_guarantees;
mod subscription_restarts;
mod subscriptions;
mod teams;
mod versions;
mod wit_versions;
