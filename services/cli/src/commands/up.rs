//! `liaison up`: the whole system in one process until Ctrl-C or SIGTERM.

use super::Cli;
use anyhow::Result;
use clap::Args;
use liaison::system::{System, UpOptions};
use liaison_kit::session;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct UpArgs {
    /// NATS client port (0 picks a free one).
    #[arg(long, default_value_t = 4222)]
    port: u16,
    /// Keep JetStream data in this directory (default: a temporary one, removed on exit).
    #[arg(long)]
    store: Option<PathBuf>,
}

pub async fn run(cli: &Cli, args: &UpArgs) -> Result<ExitCode> {
    let config = cli.load_config()?;
    println!("Starting Liaison: nats-server, gateway, audit ...");
    let system = System::start(
        config,
        UpOptions {
            port: (args.port != 0).then_some(args.port),
            store_dir: args.store.clone(),
            sync_interval: None,
        },
    )
    .await?;
    let path = cli.session.clone().unwrap_or_else(session::default_path);
    system.session.save(&path)?;
    let agencies: Vec<String> = system
        .registry
        .ids()
        .iter()
        .map(ToString::to_string)
        .collect();
    println!("  NATS      {}", system.url());
    println!(
        "  session   {} (NATS credentials per agency and service, mode 0600)",
        path.display()
    );
    println!("  agencies  {}", agencies.join(", "));
    println!("  streams   EVENTS, DELIVERY, DECISIONS, LEDGER");
    println!("Try, in another terminal:");
    println!("  liaison send --agency school-a deploy/examples/referral.json");
    println!("  liaison inbox --agency police");
    println!("  liaison audit verify");
    println!("Liaison is ready. Press Ctrl-C to stop.");
    stop_signal().await?;
    println!("Stopping ...");
    system.shutdown().await?;
    let _ = std::fs::remove_file(&path);
    println!("Stopped.");
    Ok(ExitCode::SUCCESS)
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM.
async fn stop_signal() -> Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
