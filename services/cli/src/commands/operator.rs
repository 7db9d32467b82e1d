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
    let js = async_nats::jetstream::new(client);
    let seeded = provision(&js, &config.streams, &registry).await?;
    println!(
        "Provisioned EVENTS, DELIVERY, DECISIONS, LEDGER, CHECKPOINTS, their consumers and KV \
         buckets on {} (inboxes need nothing per agency)",
        target.url,
    );
    match seeded {
        liaison_runtime::live_registry::Seeded::Written(n) => println!(
            "Live registry seeded from {}: {n} agencies",
            config.paths.registry.display()
        ),
        liaison_runtime::live_registry::Seeded::Already(n) => println!(
            "Live registry already holds {n} entries: left as it is (change it with `liaison agencies`)"
        ),
    }
    Ok(ExitCode::SUCCESS)
}
