//! End-to-end tests: the real `refract` binary, real components compiled from
//! `sample-projections/`, a real SQLite file in a temporary directory.

mod api;
mod common;
mod faults;
mod helpdesk;
mod restart;
mod runtime;
mod versions;
mod wit_versions;
