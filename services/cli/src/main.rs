//! The `liaison` command. See `liaison --help`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod commands;

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = commands::Cli::parse();
    liaison_kit::telemetry::init(if cli.verbose { "info" } else { "warn" });
    match commands::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
