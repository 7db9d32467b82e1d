//! `liaison`: the command-line tool and the library under it.
//!
//! Owns running a whole Liaison system in one process ([`system`], behind
//! `liaison up` and `liaison demo`), the agency client used to send and to read
//! an inbox ([`client`], re-exported from `liaison-client`), agency keys ([`keys`]), development certificates
//! for the HTTPS door ([`devtls`]), the demo day ([`demo`]) and the operator
//! console ([`console`], with service discovery [`discover`] and the
//! operations listeners' pages [`ops_http`]) and the evidence benchmark
//! behind `liaison bench` ([`bench`]). Services' own logic stays in
//! their crates.

pub mod bench;
pub mod client;
pub mod console;
pub mod demo;
pub mod devtls;
pub mod discover;
pub mod keys;
pub mod ops_http;
pub mod progress;
pub mod system;
