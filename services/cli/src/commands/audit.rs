//! `liaison audit ...`: auditor commands over the ledger.

use super::Cli;
use anyhow::Result;
use clap::Subcommand;
use liaison_kit::connect::connect;
use liaison_kit::users;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole hash chain; exit 0 when intact, 2 naming the first bad record.
    Verify,
}

pub async fn run(cli: &Cli, command: &AuditCommand) -> Result<ExitCode> {
    match command {
        AuditCommand::Verify => {
            let target = cli.target(users::AUDITOR)?;
            let client = connect(&target.url, &target.credentials, "liaison-audit-verify").await?;
            let js = async_nats::jetstream::new(client);
            let report = liaison_audit::verify::verify(&js, |_, _| {}).await?;
            Ok(print_report(&report))
        }
    }
}

/// Prints a verification report and returns the exit code it calls for.
pub fn print_report(report: &liaison_audit::verify::Report) -> ExitCode {
    if report.intact() {
        println!(
            "Ledger intact: {} records verified, head {}",
            report.verified, report.head
        );
        ExitCode::SUCCESS
    } else {
        match &report.first_break {
            Some(b) => println!(
                "Ledger BROKEN at stream message {}: {b}. {} records before it verify.",
                b.seq(),
                report.verified
            ),
            None => println!(
                "Ledger incomplete: {} of {} records read.",
                report.verified, report.total
            ),
        }
        ExitCode::from(2)
    }
}
