//! `liaison alerts`: the alerts business partners have not all acknowledged,
//! read from the alerts service's `ALERTS` bucket as the operator (`--all`:
//! every alert it tracks); and `liaison alerts ack ALERT_ID --agency A`: a
//! business partner acknowledges an alert, as an `alert_ack` envelope signed
//! with its own key, through the gateway like any envelope.

use super::Cli;
use super::agency::{agency_client, print_verdict};
use anyhow::Result;
use clap::{Args, Subcommand};
use liaison_alerts::board;
use liaison_core::connect::connect;
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::{AlertAcknowledged, Classification, Envelope};
use liaison_runtime::users;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct AlertsArgs {
    #[command(subcommand)]
    command: Option<AlertsCommand>,
    /// Every alert the service tracks, acknowledged ones included.
    #[arg(long)]
    all: bool,
    /// One JSON object per line, for machines.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum AlertsCommand {
    /// Acknowledge an alert as the business partner (or council) that received it.
    Ack {
        /// The alert's envelope id.
        alert_id: String,
        /// The acknowledging agency (as registered).
        #[arg(long)]
        agency: String,
        /// The agency's signing key [default: deploy/agencies/dev-keys/AGENCY.pem].
        #[arg(long)]
        key: Option<PathBuf>,
        /// What the agency did: read, actioned, cascaded ...
        #[arg(long, default_value = "read")]
        action: String,
        /// The legal basis of the acknowledgement (a code of the vocabulary).
        #[arg(long, default_value = "DPA-2018-s35")]
        legal_basis: String,
    },
}

pub async fn run(cli: &Cli, args: &AlertsArgs) -> Result<ExitCode> {
    match &args.command {
        None => list(cli, args).await,
        Some(AlertsCommand::Ack {
            alert_id,
            agency,
            key,
            action,
            legal_basis,
        }) => acknowledge(cli, alert_id, agency, key.as_ref(), action, legal_basis).await,
    }
}

async fn list(cli: &Cli, args: &AlertsArgs) -> Result<ExitCode> {
    let target = cli.target(users::OPERATOR)?;
    let client = connect(
        &target.url,
        &target.credentials,
        &target.tls,
        "liaison-alerts-list",
    )
    .await?;
    let js = async_nats::jetstream::new(client);
    let alerts = board::read(&js).await?;
    let rows = board::rows(&alerts, liaison_alerts::now_ms(), args.all);
    if args.json {
        for row in &rows {
            println!("{}", serde_json::to_string(row)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!(
            "No {}alerts ({} tracked).",
            if args.all { "" } else { "outstanding " },
            alerts.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", board::table(&rows));
    println!(
        "{} {}alert(s) of {} tracked",
        rows.len(),
        if args.all { "" } else { "outstanding " },
        alerts.len()
    );
    Ok(ExitCode::SUCCESS)
}

async fn acknowledge(
    cli: &Cli,
    alert_id: &str,
    agency: &str,
    key: Option<&PathBuf>,
    action: &str,
    legal_basis: &str,
) -> Result<ExitCode> {
    let client = agency_client(cli, agency, key).await?;
    let mut envelope = Envelope {
        classification: Classification::Official as i32,
        purpose: "protective-security".into(),
        legal_basis: legal_basis.to_owned(),
        in_reply_to: alert_id.to_owned(),
        body: Some(Body::AlertAck(AlertAcknowledged {
            action: action.to_owned(),
        })),
        ..Default::default()
    };
    let author = format!("{agency}-case-system");
    liaison_client::envelope::complete(&mut envelope, client.agency(), &author);
    liaison_client::envelope::check(&envelope, client.agency())?;
    let verdict = client.send(&envelope).await?;
    println!(
        "envelope {} from {agency}: alert_ack of {alert_id}",
        envelope.id
    );
    Ok(print_verdict(&verdict))
}
