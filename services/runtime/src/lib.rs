//! `liaison-runtime`: what only Liaison's services (and the `liaison`
//! command that runs them) use, on top of `liaison-core`.
//!
//! It owns configuration ([`config`]), the NATS users and their permissions
//! ([`users`]) and the nats-server configuration rendered from them
//! ([`nats_conf`], [`nats_leaf`], [`nats_secrets`]), locating and launching a
//! nats-server ([`nats_server`]), provisioning streams ([`provision`]), the
//! agency registry file ([`registry`]), the consumer loops the services share
//! ([`consume`], [`fold`], [`receipts`]), service discovery
//! ([`discovery`]), a service process's start-up ([`process`]), and
//! telemetry: logs and OTLP span export ([`telemetry`]), Prometheus metrics
//! ([`metrics`]) and the operations listener ([`ops`]).
//!
//! Agencies never compile it: `liaison-client` depends on `liaison-core`
//! only.

pub mod auditors;
pub mod config;
pub mod consume;
pub mod direct;
pub mod discovery;
pub mod fold;
pub mod inbox;
pub mod live_registry;
pub mod metrics;
pub mod nats_conf;
pub mod nats_leaf;
pub mod nats_secrets;
pub mod nats_server;
pub mod ops;
pub mod process;
pub mod provision;
pub mod receipts;
pub mod registry;
pub mod seal;
pub mod telemetry;
pub mod users;
