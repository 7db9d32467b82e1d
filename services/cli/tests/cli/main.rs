//! The `liaison` command as a user runs it: one test binary, a module per
//! suite (each starts its own nats-server, or its own `liaison up`, on free
//! ports). `cargo test -p liaison --test cli` runs them all;
//! `cargo test -p liaison --test cli deploy::` one suite.

mod alerts_cli;
mod bench;
mod cli;
mod deploy;
mod link;
mod registry;
mod suggested;

/// The repository root (commands run there, as the README runs them).
fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}
