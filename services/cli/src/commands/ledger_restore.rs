//! `liaison audit restore BUNDLE`: the ledger of a lost cluster put back
//! from an exported bundle, as the operator, into the empty streams of a
//! rebuilt one. The bundle is checked against the configured verifier key
//! (never the key inside it) before anything is written; what is restored
//! proves itself against its own signed checkpoints.

use super::Cli;
use super::audit::trusted_key;
use anyhow::{Context as _, Result, anyhow};
use liaison_audit::bundle::Bundle;
use liaison_core::connect::connect;
use liaison_runtime::config::Config;
use liaison_runtime::users;
use std::path::Path;
use std::process::ExitCode;

pub async fn run(cli: &Cli, config: &Config, path: &Path) -> Result<ExitCode> {
    let verifier = trusted_key(config)?;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let bundle = Bundle::parse(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    // As the audit service, which owns the ledger's streams: the operator
    // may neither write the ledger nor purge DECISIONS (ADR 0021).
    let target = cli.target(users::AUDIT)?;
    let client = connect(
        &target.url,
        &target.credentials,
        &target.tls,
        "liaison-restore",
    )
    .await?;
    let restored =
        liaison_audit::restore::restore(&async_nats::jetstream::new(client), &bundle, &verifier)
            .await?;
    println!(
        "Restored {} records ({} blocks) and {} signed checkpoints from {} into {}; start the audit \
         service, then run `liaison audit verify`",
        restored.entries,
        restored.blocks,
        restored.checkpoints,
        path.display(),
        target.url
    );
    Ok(ExitCode::SUCCESS)
}
