//! `liaison-core`: the vocabulary that partner agencies' systems and
//! Liaison's services share, and nothing of a server.
//!
//! It owns the identifiers ([`ids`]) and the NATS subjects built from them
//! ([`subjects`]), the rules every envelope must meet before it is sent or
//! accepted ([`envelope_rules`]), a case's lifecycle ([`lifecycle`]) and
//! participation ([`participation`]), the names of the services' own senders
//! ([`system`]), agency tokens: signing and verifying them ([`tokens`]), W3C
//! trace context ([`trace`]) and the spans that carry it ([`hop`]), and
//! connecting to NATS as one user ([`connect`], with [`secret`] keeping
//! passwords out of logs).
//!
//! `liaison-client` depends on this crate alone, so an agency integration
//! compiles no HTTP server and no span exporter; what only services use
//! (configuration, telemetry export, the nats-server launcher, provisioning)
//! is in `liaison-runtime`.

pub mod connect;
pub mod envelope_rules;
pub mod error;
pub mod hop;
pub mod html;
pub mod ids;
pub mod lifecycle;
pub mod participation;
pub mod secret;
pub mod session;
pub mod subjects;
pub mod system;
pub mod time;
pub mod tokens;
pub mod trace;

pub use connect::Credentials;
pub use error::{NatsContext, NatsError};
pub use ids::{AgencyId, IdError};
pub use secret::Secret;

#[cfg(test)]
mod trace_context_tests;
