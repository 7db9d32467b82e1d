//! Operator commands for a deployment whose nats-server runs on its own:
//! `provision` creates the streams and consumers (`nats-config`, which
//! renders the servers' configuration, is [`super::nats_config`]).

use super::Cli;
use anyhow::Result;
use liaison_core::connect::connect;
use liaison_runtime::provision::provision;
use liaison_runtime::registry::Registry;
use liaison_runtime::users;
use std::process::ExitCode;

/// Creates or updates the streams and durable consumers, as the operator.
pub async fn provision_streams(cli: &Cli) -> Result<ExitCode> {
    let config = cli.load_config()?;
    let registry = Registry::load(&config.paths.registry)?;
    let target = cli.target(users::OPERATOR)?;
    let client = connect(
        &target.url,
        &target.credentials,
        &target.tls,
        "liaison-provision",
    )
    .await?;
    provision(&async_nats::jetstream::new(client), &config.streams).await?;
    println!(
        "Provisioned EVENTS, DELIVERY, DECISIONS, LEDGER, CHECKPOINTS, their consumers and KV \
         buckets on {} (inboxes need nothing per agency: {} registered)",
        target.url,
        registry.ids().len(),
    );
    Ok(ExitCode::SUCCESS)
}
