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

/// Runs `liaison ARGS` from the repository root with the session `session`.
fn liaison(session: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_liaison"))
        .current_dir(root())
        .arg("--session")
        .arg(session)
        .args(args)
        .env_remove("LIAISON_NATS_URL")
        .output()
        .unwrap_or_else(|e| panic!("running liaison: {e}"))
}

/// Runs `liaison ARGS` from the repository root, with no session.
fn run(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_liaison"))
        .current_dir(root())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running liaison: {e}"))
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
