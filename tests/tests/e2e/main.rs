//! Liaison end to end: one test binary, a module per suite. Every test starts
//! its own whole system (a real nats-server on a random port with a
//! temporary store, the services in-process) through the harness in
//! `tests/src`, so tests run side by side.
//!
//! - `cargo nextest run -p liaison-tests` (or `cargo test -p liaison-tests
//!   --test e2e`) runs them; a suite alone: `... e2e ledger::`.
//! - The slow tier (minutes each: the 100,000-update durability run, the
//!   larger cluster run) is `#[ignore]`d: `... -- --ignored`.
//! - `TEST_LOG=1` (or a filter such as `TEST_LOG=liaison_gateway=debug`)
//!   shows the services' logs; nextest prints them for a failing test.

mod access_policy;
mod agency_client;
mod alerts;
mod cases;
mod cluster;
mod console;
mod consumer_faults;
mod council_adapter;
mod data_protection;
mod demo;
mod durability;
mod group_commit;
mod harness;
mod hostile_agency;
mod hostile_frames;
mod hostile_input;
mod https;
mod https_refusals;
mod https_tls;
mod leaf_node;
mod ledger;
mod ledger_operations;
mod ledger_restore;
mod linkage;
mod live_registry;
mod membership;
mod metrics;
mod nats_access;
mod nats_tls;
mod operations;
mod persistence;
mod python_example;
mod recipient_seq;
mod refusals;
mod replicas;
mod restart;
mod rogue;
mod service_faults;
mod slice;
mod token_attacks;
mod tracing;
mod tracing_services;
mod witness;
