//! `liaison subject ...`: what was shared about one person, by their
//! pseudonymous subject token (DPA 2018 Part 3, s.45: the right of access).
//! Reading the ledger for it is a consultation like any auditor's: recorded,
//! with its purpose (`subject-rights` unless another is stated), before
//! anything is read.

use super::Cli;
use super::audit::{ConsultArgs, consult, scoped_records, trusted_key};
use anyhow::{Result, anyhow, bail};
use clap::Subcommand;
use liaison_audit::subject::Report;
use liaison_audit::verify::Access;
use liaison_proto::v1::{AuditRecord, Operation};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct SubjectArgs {
    #[command(flatten)]
    consult: ConsultArgs,
    #[command(subcommand)]
    command: SubjectCommand,
}

#[derive(Debug, Subcommand)]
pub enum SubjectCommand {
    /// Every share about the subject token: when, which agency sent what
    /// kind under which clause, purpose and legal basis, to whom, which
    /// labels each recipient did not see, refusals, corrections and erasure
    /// confirmations. A consultation of the ledger, recorded.
    Report {
        /// The subject's pseudonymous token (`liaison link token` computes it).
        #[arg(long)]
        token: String,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Restrict the subject's data (DPA 2018 s.47(2), e.g. where it is
    /// needed as evidence): further shares naming the token are refused,
    /// but for the purposes given with --allow. Recorded in the ledger; in
    /// force on every gateway at once.
    Restrict {
        #[arg(long)]
        token: String,
        /// A purpose (vocabulary code) shares about the subject may still have; repeatable.
        #[arg(long = "allow")]
        allow: Vec<String>,
        #[command(flatten)]
        by: super::agencies::Operator,
    },
    /// Lift the subject's restriction. Recorded in the ledger.
    Unrestrict {
        #[arg(long)]
        token: String,
        #[command(flatten)]
        by: super::agencies::Operator,
    },
    /// Erase everything Liaison stores about the subject (DPA 2018 s.47(1)):
    /// their data key is destroyed, so every envelope and copy about them in
    /// EVENTS and DELIVERY can no longer be read. The ledger, which holds no
    /// personal data, stays whole and records the erasure.
    Erase {
        #[arg(long)]
        token: String,
        #[command(flatten)]
        by: super::agencies::Operator,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Html,
}

/// The longest token taken.
const MAX_TOKEN: usize = 128;

pub async fn run(cli: &Cli, args: &SubjectArgs) -> Result<ExitCode> {
    match &args.command {
        SubjectCommand::Report { token, format } => {
            report(cli, &args.consult, token, *format).await
        }
        SubjectCommand::Restrict { token, allow, by } => {
            rights(cli, "restrict", token, allow, &[], by).await
        }
        SubjectCommand::Unrestrict { token, by } => {
            rights(cli, "unrestrict", token, &[], &[], by).await
        }
        SubjectCommand::Erase { token, by } => {
            // Every share about the subject, from the ledger (a recorded
            // consultation), so that each of their recipients is told (s.48).
            check_token(token)?;
            let who = args.consult.with_default_purpose("subject-rights");
            let (report, intact) = read_report(cli, &who, token).await?;
            if !intact {
                bail!(
                    "the ledger did not verify intact: `liaison audit verify` says where; nothing erased"
                );
            }
            let envelopes: Vec<String> = report.shares.iter().map(|s| s.envelope.clone()).collect();
            rights(cli, "erase", token, &[], &envelopes, by).await
        }
    }
}

/// A named operator's request on the subject's data, answered by a gateway.
async fn rights(
    cli: &Cli,
    action: &str,
    token: &str,
    purposes: &[String],
    envelopes: &[String],
    by: &super::agencies::Operator,
) -> Result<ExitCode> {
    check_token(token)?;
    let body = serde_json::json!({
        "action": action, "token": token, "reason": by.reason, "purposes": purposes,
        "envelopes": envelopes,
    });
    let answer =
        super::agencies::ask_on(cli, liaison_core::subjects::ADMIN_SUBJECTS, by, body).await?;
    println!(
        "{}; recorded in the ledger",
        answer["done"].as_str().unwrap_or(action)
    );
    Ok(ExitCode::SUCCESS)
}

fn check_token(token: &str) -> Result<()> {
    if token.is_empty()
        || token.len() > MAX_TOKEN
        || !token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        bail!(
            "--token {:?} is not a subject token (1 to {MAX_TOKEN} of A-Z, a-z, 0-9, '-', '_', '.', ':')",
            token.chars().take(MAX_TOKEN).collect::<String>()
        );
    }
    Ok(())
}

async fn report(cli: &Cli, who: &ConsultArgs, token: &str, format: Format) -> Result<ExitCode> {
    check_token(token)?;
    let (report, intact) = read_report(cli, who, token).await?;
    match format {
        Format::Text => print!("{}", report.text()),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| anyhow!(e))?
        ),
        Format::Html => print!("{}", report.html()),
    }
    if !intact {
        eprintln!("The ledger did NOT verify intact: `liaison audit verify` says where.");
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// The subject's report from the ledger, read as a recorded consultation,
/// and whether the ledger verified intact.
async fn read_report(cli: &Cli, who: &ConsultArgs, token: &str) -> Result<(Report, bool)> {
    let who = who.with_default_purpose("subject-rights");
    let config = cli.load_config()?;
    let (client, js, reply) = consult(
        cli,
        &who,
        "replay",
        format!("subject report --token {token}"),
    )
    .await?;
    // The subject's records, and the corrections and erasure confirmations
    // that may answer one of their shares (those carry no token).
    let wanted = |r: &AuditRecord| {
        r.subject_tokens.iter().any(|t| t == token)
            // Retention's erasures, which name a data key, not a subject.
            || r.record_id.starts_with("erasure:until.")
            || (!r.in_reply_to.is_empty()
                && [Operation::Alteration as i32, Operation::Erasure as i32].contains(&r.operation))
    };
    let mut records: Vec<(u64, AuditRecord)> = Vec::new();
    let intact = if reply.scoped {
        let request = liaison_audit::scoped::RecordsRequest {
            grant: reply.grant.clone(),
            ..Default::default()
        };
        scoped_records(&client, &request, |index, record| {
            if wanted(record) {
                records.push((index, record.clone()));
            }
            Ok(())
        })
        .await?
        .intact
    } else {
        let access = Access::Granted(js, liaison_audit::consult::Grant::new(client, &reply));
        let verifier = trusted_key(&config)?;
        liaison_audit::verify::verify(access, &verifier, |entry, record| {
            if wanted(record) {
                records.push((entry.index, record.clone()));
            }
        })
        .await?
        .intact()
    };
    let report = Report::of(token, records.iter().map(|(i, r)| (*i, r)));
    Ok((report, intact))
}
