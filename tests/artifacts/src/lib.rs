//! Paths of the guest components compiled for the test suite.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
