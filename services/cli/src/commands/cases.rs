//! `liaison cases list|show`: what an agency sees of the cases it takes part
//! in, asked through the gateway with the agency's key (the consultation is
//! recorded in the ledger).

use super::Cli;
use super::agency::agency_client;
use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use liaison_core::lifecycle;
use liaison_proto::json;
use liaison_proto::v1::{CaseQuery, CaseStatus, CaseView};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct CasesArgs {
    /// The asking agency.
    #[arg(long, global = true)]
    agency: Option<String>,
    /// The agency's signing key [default: deploy/agencies/dev-keys/AGENCY.pem].
    #[arg(long, global = true)]
    key: Option<PathBuf>,
    /// Who in the agency asks (recorded in the ledger) [default: AGENCY-case-system].
    #[arg(long, global = true)]
    author: Option<String>,
    /// One JSON object per case, for machines.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: CasesCommand,
}

#[derive(Debug, Subcommand)]
enum CasesCommand {
    /// The cases the agency participates in: live ones by unit and priority,
    /// then former subjects by review date.
    List {
        /// Only cases in this status: REFERRED, TRIAGE, OPEN, UNDER_REVIEW, CLOSED.
        #[arg(long)]
        status: Option<String>,
        /// Only this owning unit's cases.
        #[arg(long)]
        unit: Option<String>,
        /// At most this many (up to 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// One case.
    Show { case_id: String },
}

fn status(name: &str) -> Result<CaseStatus> {
    let wanted = name.to_ascii_uppercase().replace('-', "_");
    CaseStatus::from_str_name(&format!("CASE_STATUS_{wanted}"))
        .filter(|s| *s != CaseStatus::Unspecified)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--status {name:?} is not one of REFERRED, TRIAGE, OPEN, UNDER_REVIEW, CLOSED"
            )
        })
}

#[allow(clippy::print_stdout)]
pub async fn run(cli: &Cli, args: &CasesArgs) -> Result<ExitCode> {
    let Some(agency) = &args.agency else {
        bail!("--agency is required: the agency asking");
    };
    let query = match &args.command {
        CasesCommand::List {
            status: wanted,
            unit,
            limit,
        } => CaseQuery {
            status: wanted
                .as_deref()
                .map(status)
                .transpose()?
                .unwrap_or_default() as i32,
            unit: unit.clone().unwrap_or_default(),
            limit: *limit,
            ..Default::default()
        },
        CasesCommand::Show { case_id } => CaseQuery {
            case_id: case_id.clone(),
            ..Default::default()
        },
    };
    let client = agency_client(cli, agency, args.key.as_ref()).await?;
    let author = args
        .author
        .clone()
        .unwrap_or_else(|| format!("{agency}-case-system"));
    let answer = client.cases(&author, &query).await?;
    for case in &answer.cases {
        if args.json {
            println!("{}", json::to_json("CaseView", case));
        } else {
            print_case(case);
        }
    }
    if !args.json {
        println!(
            "{} case(s){}",
            answer.cases.len(),
            if answer.truncated {
                " (more: raise --limit)"
            } else {
                ""
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout)]
fn print_case(case: &CaseView) {
    let status = CaseStatus::try_from(case.status).unwrap_or(CaseStatus::Unspecified);
    let date = |t: &Option<prost_types::Timestamp>| {
        t.as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| "-".into())
    };
    println!(
        "{:<16} {:<12} owner {:<10} unit {:<12} rank {:>4}  review {}  participants {}",
        case.case_id,
        lifecycle::name(status),
        case.owner,
        case.unit,
        if case.rank == 0 {
            "-".into()
        } else {
            case.rank.to_string()
        },
        date(&case.review_date),
        case.participants.join(","),
    );
    for request in &case.open_requests {
        println!(
            "    request {} by {}: waiting for {} (by {}){}",
            request.envelope_id,
            request.requester,
            request.unanswered.join(", "),
            date(&request.respond_by),
            if request.overdue { " OVERDUE" } else { "" }
        );
    }
}
