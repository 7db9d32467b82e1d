//! `liaison agencies suspend|resume ID --reason TEXT`: a named operator's
//! membership change, signed with the operator's key and sent to the
//! gateways (`liaison.admin.agencies`), which record it in the ledger and
//! apply it everywhere within a second (docs/decisions/0020-live-membership.md).

use super::Cli;
use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use liaison_core::connect::connect;
use liaison_core::subjects;
use liaison_runtime::users;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum AgenciesCommand {
    /// Cut an agency off at once: its envelopes, case queries and inbox
    /// reads are refused `agency_suspended` at both doors, its copies held.
    Suspend(ChangeArgs),
    /// Let a suspended agency share and read again; its held copies follow.
    Resume(ChangeArgs),
    /// An agency's keys: `keys revoke ID KID` refuses its tokens signed
    /// with that key at once, on every gateway.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Revoke one of an agency's registered keys (its `kid`).
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    change: ChangeArgs,
    /// The key's id (as `liaison keys gen` printed it, or its thumbprint).
    kid: String,
}

#[derive(Debug, Args)]
pub struct ChangeArgs {
    /// The agency.
    agency: String,
    /// Why (recorded in the ledger; no personal data).
    #[arg(long)]
    reason: String,
    /// The operator making the change, as registered in `paths.operators`.
    #[arg(long)]
    operator: String,
    /// The operator's Ed25519 signing key [default: deploy/operators/dev-operator-keys/OPERATOR.pem].
    #[arg(long)]
    key: Option<PathBuf>,
}

pub async fn run(cli: &Cli, command: &AgenciesCommand) -> Result<ExitCode> {
    let (action, args, kid) = match command {
        AgenciesCommand::Suspend(args) => ("suspend", args, None),
        AgenciesCommand::Resume(args) => ("resume", args, None),
        AgenciesCommand::Keys(KeysCommand::Revoke(revoke)) => {
            ("revoke", &revoke.change, Some(revoke.kid.as_str()))
        }
    };
    let key = args.key.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "deploy/operators/dev-operator-keys/{}.pem",
            args.operator
        ))
    });
    let pem = liaison_system::keys::read_key(&key)?;
    let signer = liaison_core::tokens::Signer::from_pem(&pem, None)
        .map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
    let token = signer
        .mint(
            &args.operator,
            &args.operator,
            "liaison-admin",
            liaison_core::time::unix_now(),
            120,
        )
        .map_err(|e| anyhow::anyhow!(e))?;
    let target = cli.target(users::OPERATOR)?;
    let client = connect(
        &target.url,
        &target.credentials,
        &target.tls,
        "liaison-agencies",
    )
    .await?;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(subjects::TOKEN_HEADER, token.as_str());
    let mut body = serde_json::json!({
        "action": action,
        "agency": args.agency,
        "reason": args.reason,
    });
    if let Some(kid) = kid {
        body["kid"] = kid.into();
    }
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        client.request_with_headers(subjects::ADMIN_AGENCIES, headers, body.to_string().into()),
    )
    .await
    .context("no gateway answered within 10 s")?
    .context("asking the gateways")?;
    let answer: serde_json::Value =
        serde_json::from_slice(&reply.payload).context("the gateway's answer")?;
    if answer["ok"].as_bool() != Some(true) {
        bail!(
            "{action} refused: {}",
            answer["error"].as_str().unwrap_or("no reason given")
        );
    }
    let done = match (action, kid) {
        ("suspend", _) => "suspended".to_owned(),
        ("revoke", Some(kid)) => format!("key {kid} revoked"),
        _ => "resumed".to_owned(),
    };
    println!(
        "{} {done} by {} ({}); recorded in the ledger, in force at every gateway",
        args.agency, args.operator, args.reason
    );
    Ok(ExitCode::SUCCESS)
}
