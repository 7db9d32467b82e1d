//! `liaison-system`: a whole Liaison system as a library.
//!
//! Owns running every service in one process on a nats-server it starts
//! ([`system`], behind `liaison up` and `liaison demo`, and what the
//! end-to-end tests start), with the development certificates of the HTTPS
//! door ([`devtls`]), agency keys ([`keys`]), the operator console
//! ([`console`], with service discovery [`discover`] and the operations
//! listeners' pages [`ops_http`]), the demo day ([`demo`]) and the evidence
//! benchmark behind `liaison bench` ([`bench`]). The `liaison` command
//! (services/cli) is the commands over it; services' own logic stays in
//! their crates.

pub mod admin;
pub mod bench;
pub mod console;
pub mod demo;
pub mod devtls;
pub mod discover;
pub mod keys;
pub mod national;
pub mod ops_http;
pub mod progress;
pub mod system;
pub mod witness;
