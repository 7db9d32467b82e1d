//! The `liaison` command. See `liaison --help`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod commands;

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = commands::Cli::parse();
    // A service (`liaison serve`) sets up its own logs and span export.
    let telemetry = match (!cli.runs_service()).then(|| cli.telemetry()) {
        None => None,
        Some(Ok(telemetry)) => Some(telemetry),
        Some(Err(e)) => {
            eprintln!("error: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let code = match commands::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    };
    // Sends the spans still waiting (a `liaison send` ends at once).
    if let Some(telemetry) = telemetry {
        telemetry.shutdown();
    }
    code
}
