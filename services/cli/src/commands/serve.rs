//! `liaison serve SERVICE`: one service as its own process, exactly as its
//! own binary runs it (`liaison-gateway`, `liaison-audit`, ...: the same
//! `liaison_runtime::process::serve_with` call), so a container image needs only
//! the `liaison` binary. Configuration: `--config` (or `LIAISON_CONFIG`),
//! then `LIAISON_*` variables; the NATS user and password are the
//! service's own (`LIAISON_NATS_USER`, `LIAISON_NATS_PASSWORD`).

use super::Cli;
use anyhow::Result;
use clap::Subcommand;
use liaison_runtime::process::serve_with;
use std::process::ExitCode;

/// The service to run.
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum ServeCommand {
    /// The gateway: ingress (NATS and the HTTPS door), policy, routing, delivery.
    Gateway,
    /// The audit service: the hash-chained ledger and its signed checkpoints.
    Audit,
    /// The cases service: case lifecycle, participation, priorities, reviews, queries.
    Cases,
    /// The linkage service: re-engagement and duplicate-subject matching.
    Linkage,
    /// The alerts service: acknowledgements and escalation of business alerts.
    Alerts,
}

/// Runs the service until SIGTERM or Ctrl-C; its logs go to stderr.
pub async fn run(cli: &Cli, service: ServeCommand) -> Result<ExitCode> {
    let config = cli.config_file();
    Ok(match service {
        ServeCommand::Gateway => serve_with("liaison-gateway", config, liaison_gateway::run).await,
        ServeCommand::Audit => serve_with("liaison-audit", config, liaison_audit::run).await,
        ServeCommand::Cases => serve_with("liaison-cases", config, liaison_cases::run).await,
        ServeCommand::Linkage => serve_with("liaison-linkage", config, liaison_linkage::run).await,
        ServeCommand::Alerts => serve_with("liaison-alerts", config, liaison_alerts::run).await,
    })
}
