//! `liaison audit ...`: auditor commands over the ledger.

use super::Cli;
use anyhow::{Context as _, Result, anyhow, bail};
use clap::Subcommand;
use liaison_audit::bundle::Bundle;
use liaison_audit::checkpoint::NoteVerifier;
use liaison_audit::inspect::Report;
use liaison_audit::merkle::{self, Hash};
use liaison_audit::replay::{self, Filter};
use liaison_kit::config::Config;
use liaison_kit::connect::connect;
use liaison_kit::{subjects, users};
use serde_json::json;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole ledger (hash chain, Merkle tree, signed checkpoints);
    /// exit 0 when intact, 2 naming the first bad record.
    Verify {
        /// Verify an exported bundle offline instead of the live ledger.
        #[arg(long)]
        bundle: Option<PathBuf>,
    },
    /// Ask the audit service to sign a checkpoint now and print it.
    Checkpoint,
    /// Prove that record INDEX (from 0) is in the ledger of the latest checkpoint.
    Prove { index: u64 },
    /// Prove that the latest checkpoint extends an earlier one (a signed note file).
    Consistency { checkpoint: PathBuf },
    /// Export the ledger, its checkpoints and the verifier key to a bundle file.
    Export { file: PathBuf },
    /// Print the verifier key of the configured checkpoint signing key.
    VerifierKey,
    /// Replay the ledger, verified as it is read, filtered and formatted.
    Replay(ReplayArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// First record (index from 0).
    #[arg(long)]
    from: Option<u64>,
    /// Last record (inclusive).
    #[arg(long)]
    to: Option<u64>,
    /// Records at or after this time (RFC 3339, e.g. 2026-11-23T09:00:00Z).
    #[arg(long)]
    since: Option<String>,
    /// Records at or before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// Records where this agency acted or received.
    #[arg(long)]
    agency: Option<String>,
    /// Records about this case.
    #[arg(long)]
    case: Option<String>,
    /// Records touching this pseudonymous subject token.
    #[arg(long)]
    token: Option<String>,
    /// collection, alteration, consultation, disclosure, combination or erasure.
    #[arg(long)]
    operation: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    format: ReplayFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ReplayFormat {
    Table,
    Ndjson,
    Csv,
}

fn time(flag: &str, value: Option<&String>) -> Result<Option<prost_types::Timestamp>> {
    value
        .map(|v| {
            v.parse()
                .map_err(|e| anyhow!("--{flag} {v:?} is not an RFC 3339 time: {e}"))
        })
        .transpose()
}

impl ReplayArgs {
    fn filter(&self) -> Result<Filter> {
        Ok(Filter {
            from_index: self.from,
            to_index: self.to,
            since: time("since", self.since.as_ref())?,
            until: time("until", self.until.as_ref())?,
            agency: self.agency.clone(),
            case_id: self.case.clone(),
            token: self.token.clone(),
            operation: self
                .operation
                .as_deref()
                .map(replay::parse_operation)
                .transpose()
                .map_err(|e| anyhow!(e))?,
        })
    }
}

/// Prints the records that pass the filter, as the ledger is verified.
async fn replay_ledger(cli: &Cli, config: &Config, args: &ReplayArgs) -> Result<ExitCode> {
    let filter = args.filter()?;
    let verifier = trusted_key(config)?;
    let (_, js) = auditor(cli).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match args.format {
        ReplayFormat::Csv => writeln!(
            out,
            "{}",
            replay::csv_line(&replay::COLUMNS.map(String::from))
        )?,
        ReplayFormat::Table => writeln!(
            out,
            "{:>6}  {:<30}  {:<12}  {:<24}  {:<12}  {:<24}  envelope",
            "index", "time", "operation", "decision", "agency", "recipients"
        )?,
        ReplayFormat::Ndjson => {}
    }
    let mut shown = 0u64;
    let mut written = Ok(());
    let report = liaison_audit::verify::verify(&js, &verifier, |entry, record| {
        if written.is_err() || !filter.matches(entry.index, record) {
            return;
        }
        shown += 1;
        written = match args.format {
            ReplayFormat::Ndjson => {
                let mut json = liaison_proto::json::to_json("AuditRecord", record);
                json["index"] = json!(entry.index);
                writeln!(out, "{json}")
            }
            ReplayFormat::Csv => writeln!(
                out,
                "{}",
                replay::csv_line(&replay::row(entry.index, record))
            ),
            ReplayFormat::Table => {
                let r = replay::row(entry.index, record);
                writeln!(
                    out,
                    "{:>6}  {:<30}  {:<12}  {:<24}  {:<12}  {:<24}  {}",
                    r[0], r[1], r[2], r[3], r[4], r[6], r[7]
                )
            }
        };
    })
    .await?;
    written?;
    out.flush()?;
    drop(out);
    eprintln!("{shown} of {} records shown", report.verified);
    if report.intact() {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(print_report(&report))
    }
}

/// The auditor's trusted verifier key, from `audit.verifier_key`.
fn trusted_key(config: &Config) -> Result<NoteVerifier> {
    if config.audit.verifier_key.is_empty() {
        bail!(
            "no verifier key: set audit.verifier_key in the config file or LIAISON_AUDIT_VERIFIER_KEY"
        );
    }
    Ok(NoteVerifier::parse(&config.audit.verifier_key)?)
}

async fn auditor(cli: &Cli) -> Result<(async_nats::Client, async_nats::jetstream::Context)> {
    let target = cli.target(users::AUDITOR)?;
    let client = connect(&target.url, &target.credentials, "liaison-auditor").await?;
    Ok((client.clone(), async_nats::jetstream::new(client)))
}

/// Leaf hashes of every intact record, and the latest signed checkpoint.
async fn tree(cli: &Cli, verifier: &NoteVerifier) -> Result<(Vec<Hash>, String)> {
    let (_, js) = auditor(cli).await?;
    let mut leaves = Vec::new();
    let inspector = liaison_audit::verify::scan(&js, verifier, |entry| {
        leaves.push(merkle::leaf_hash(&entry.record))
    })
    .await
    .map_err(|e| anyhow!(e))?;
    let report = inspector.finish();
    if let Some(finding) = report.first_finding {
        bail!("the ledger does not verify: {finding}");
    }
    let notes = liaison_audit::verify::checkpoints(&js)
        .await
        .map_err(|e| anyhow!(e))?;
    let latest = notes
        .last()
        .cloned()
        .ok_or_else(|| anyhow!("no signed checkpoint yet: run `liaison audit checkpoint`"))?;
    Ok((leaves, latest))
}

pub async fn run(cli: &Cli, command: &AuditCommand) -> Result<ExitCode> {
    let config = cli.load_config()?;
    match command {
        AuditCommand::Verify { bundle: Some(path) } => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let bundle = Bundle::parse(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
            let verifier = match trusted_key(&config) {
                Ok(v) => v,
                Err(_) => {
                    eprintln!(
                        "warning: no audit.verifier_key configured; trusting the key inside the bundle"
                    );
                    NoteVerifier::parse(&bundle.verifier_key)?
                }
            };
            if bundle.verifier_key != verifier.vkey() {
                eprintln!(
                    "warning: the bundle names a different verifier key than the one configured"
                );
            }
            Ok(print_report(&bundle.inspect(&verifier)))
        }
        AuditCommand::Verify { bundle: None } => {
            let verifier = trusted_key(&config)?;
            let (_, js) = auditor(cli).await?;
            let report = liaison_audit::verify::verify(&js, &verifier, |_, _| {}).await?;
            Ok(print_report(&report))
        }
        AuditCommand::Checkpoint => {
            let (client, _) = auditor(cli).await?;
            let reply = tokio::time::timeout(
                Duration::from_secs(10),
                client.request(subjects::CHECKPOINT_REQUEST, "".into()),
            )
            .await
            .map_err(|_| anyhow!("the audit service did not answer within 10 s"))?
            .map_err(|e| anyhow!("audit service unreachable: {e}"))?;
            let note = String::from_utf8_lossy(&reply.payload).into_owned();
            if note.is_empty() {
                println!("The ledger is empty: nothing to checkpoint.");
            } else {
                trusted_key(&config)?.open(&note)?;
                print!("{note}");
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Prove { index } => {
            let verifier = trusted_key(&config)?;
            let (leaves, note) = tree(cli, &verifier).await?;
            let checkpoint = verifier.open(&note)?;
            let size = checkpoint.size;
            let covered = leaves
                .get(..size as usize)
                .ok_or_else(|| anyhow!("the ledger is shorter than its checkpoint"))?;
            let leaf = covered.get(*index as usize).ok_or_else(|| {
                anyhow!("record {index} is not in the checkpoint of {size} records")
            })?;
            let proof = merkle::inclusion_proof(*index, covered)?;
            merkle::verify_inclusion(*index, size, leaf, &proof, &checkpoint.root)?;
            print_json(json!({
                "index": index,
                "tree_size": size,
                "leaf_hash": hex::encode(leaf),
                "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
                "root": hex::encode(checkpoint.root),
                "checkpoint": note,
                "verified": true,
            }));
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Consistency { checkpoint } => {
            let verifier = trusted_key(&config)?;
            let old_note = std::fs::read_to_string(checkpoint)
                .with_context(|| format!("cannot read {}", checkpoint.display()))?;
            let old = verifier
                .open(&old_note)
                .with_context(|| format!("{}", checkpoint.display()))?;
            let (leaves, note) = tree(cli, &verifier).await?;
            let new = verifier.open(&note)?;
            let covered = leaves
                .get(..new.size as usize)
                .ok_or_else(|| anyhow!("the ledger is shorter than its checkpoint"))?;
            let proof = merkle::consistency_proof(old.size, covered)?;
            merkle::verify_consistency(old.size, new.size, &old.root, &new.root, &proof)?;
            print_json(json!({
                "old_size": old.size,
                "new_size": new.size,
                "old_root": hex::encode(old.root),
                "new_root": hex::encode(new.root),
                "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
                "checkpoint": note,
                "verified": true,
            }));
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Export { file } => {
            let verifier = trusted_key(&config)?;
            let (_, js) = auditor(cli).await?;
            let bundle = Bundle::export(&js, &config.audit.origin, &verifier)
                .await
                .map_err(|e| anyhow!(e))?;
            let report = bundle.inspect(&verifier);
            std::fs::write(file, serde_json::to_string(&bundle)?)
                .with_context(|| format!("cannot write {}", file.display()))?;
            println!(
                "Exported {} records and {} checkpoints to {}",
                bundle.entries.len(),
                bundle.checkpoints.len(),
                file.display()
            );
            Ok(print_report(&report))
        }
        AuditCommand::Replay(args) => replay_ledger(cli, &config, args).await,
        AuditCommand::VerifierKey => {
            println!("{}", liaison_audit::signer(&config)?.verifier().vkey());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_json(value: serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(&value).unwrap_or_default()
    );
}

/// Prints a verification report and returns the exit code it calls for.
pub fn print_report(report: &Report) -> ExitCode {
    let checkpoint = report
        .latest_checkpoint
        .map(|size| {
            format!(
                ", matching {} signed checkpoints up to {size} records",
                report.checkpoints_matched
            )
        })
        .unwrap_or_else(|| ", no signed checkpoint yet".to_owned());
    if report.intact() {
        println!(
            "Ledger intact: {} records verified{checkpoint}; chain head {}, Merkle root {}",
            report.verified, report.head, report.root
        );
        ExitCode::SUCCESS
    } else {
        match &report.first_finding {
            Some(finding) => println!(
                "Ledger BROKEN: {finding}. {} records before it verify.",
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
