//! `liaison-kit`: the small common ground of Liaison's services.
//!
//! It owns configuration, identifiers and the subjects built from them, the
//! NATS users and their permissions, connecting to NATS, provisioning streams,
//! locating and launching a nats-server, the agency registry, and telemetry:
//! logs, W3C trace context ([`trace`]) and spans ([`hop`]).
//! It holds no business logic: services share only this crate, the generated
//! protobuf types and NATS subjects.

pub mod config;
pub mod connect;
pub mod consume;
pub mod discovery;
pub mod envelope_rules;
pub mod fold;
pub mod hop;
pub mod ids;
pub mod lifecycle;
pub mod metrics;
pub mod nats_conf;
pub mod nats_leaf;
pub mod nats_secrets;
pub mod nats_server;
pub mod ops;
pub mod participation;
pub mod process;
pub mod provision;
pub mod receipts;
pub mod registry;
pub mod session;
pub mod subjects;
pub mod system;
pub mod telemetry;
pub mod time;
pub mod tokens;
pub mod trace;
pub mod users;

pub use ids::{AgencyId, IdError};
