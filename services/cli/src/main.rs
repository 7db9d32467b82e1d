//! The `liaison` command. See `liaison --help`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod commands;

use clap::Parser;
use futures_util::FutureExt as _;

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
    quiet_on_closed_stdout();
    // A panic unwinds the command (what it started is stopped by its drops)
    // and is told apart here.
    let ran = std::panic::AssertUnwindSafe(commands::run(cli))
        .catch_unwind()
        .await;
    let code = match ran {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
        Err(payload) if is_closed_stdout(panic_text(payload.as_ref())) => {
            // Whoever read the output has gone (`liaison … | head`): exit as
            // a command killed by SIGPIPE would, quietly.
            std::process::ExitCode::from(141)
        }
        Err(payload) => std::panic::resume_unwind(payload),
    };
    // Sends the spans still waiting (a `liaison send` ends at once).
    if let Some(telemetry) = telemetry {
        telemetry.shutdown();
    }
    code
}

/// The text of a panic's payload, if it has one.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default()
}

/// Whether a panic is `println!` finding its reader gone.
fn is_closed_stdout(text: &str) -> bool {
    text.starts_with("failed printing to stdout") && text.contains("Broken pipe")
}

/// Keeps the panic message of a closed stdout off stderr (the command then
/// exits 141, as on SIGPIPE); every other panic is reported as before.
fn quiet_on_closed_stdout() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !is_closed_stdout(panic_text(info.payload())) {
            report(info);
        }
    }));
}
