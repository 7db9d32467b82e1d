//! `liaison audit ...`: auditor commands over the ledger.

use super::Cli;
use anyhow::{Context as _, Result, anyhow, bail};
use clap::Subcommand;
use liaison_audit::bundle::Bundle;
use liaison_audit::checkpoint::NoteVerifier;
use liaison_audit::consult::{AUDIENCE, ConsultReply, ConsultRequest, Grant};
use liaison_audit::inspect::Report;
use liaison_audit::merkle::{self, Hash};
use liaison_audit::replay::{self, Filter};
use liaison_audit::verify::Access;
use liaison_client::mint;
use liaison_core::connect::connect;
use liaison_core::subjects;
use liaison_runtime::config::Config;
use liaison_runtime::users;
use liaison_system::keys;
use liaison_system::progress::Progress;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(flatten)]
    consult: ConsultArgs,
    #[command(subcommand)]
    command: AuditCommand,
}

/// Who is consulting the ledger, and why: recorded in the ledger before any read.
#[derive(Debug, clap::Args)]
pub(super) struct ConsultArgs {
    /// Why you are consulting the ledger, as one of the purposes the
    /// auditors' registry lists (`log-review`, `integrity-check`,
    /// `subject-rights`, `oversight`, `legal-proceedings` in development);
    /// recorded with your identity.
    #[arg(long, global = true)]
    purpose: Option<String>,
    /// Your auditor id, as registered in the auditors' registry.
    #[arg(long, global = true, default_value = "ig-officer")]
    auditor: String,
    /// Your Ed25519 signing key [default: deploy/audit/dev-auditor-keys/AUDITOR.pem].
    #[arg(long, global = true)]
    auditor_key: Option<PathBuf>,
    /// The person consulting [default: $USER].
    #[arg(long, global = true)]
    person: Option<String>,
}

impl ConsultArgs {
    /// These, with `purpose` when none was stated.
    pub(super) fn with_default_purpose(&self, purpose: &str) -> Self {
        Self {
            purpose: self.purpose.clone().or_else(|| Some(purpose.to_owned())),
            auditor: self.auditor.clone(),
            auditor_key: self.auditor_key.clone(),
            person: self.person.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole ledger (hash chain, Merkle tree, signed checkpoints);
    /// exit 0 when intact, 2 naming the first bad record.
    Verify {
        /// Verify an exported bundle offline instead of the live ledger.
        #[arg(long)]
        bundle: Option<PathBuf>,
        /// Verify the live ledger without a consultation, with the operator's
        /// NATS credentials: for a ledger the audit service will not run on.
        /// Not recorded in the ledger.
        #[arg(long, conflicts_with = "bundle")]
        unrecorded: bool,
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
    /// A receipt for one envelope: every record of it (collection,
    /// disclosures, answers) with its inclusion proof against a checkpoint
    /// signed by the log and cosigned by the witnesses (C2SP tlog-proof), to
    /// verify offline with `verify-receipt`.
    Receipt {
        /// The envelope, as `SENDER/ID` or `ID`.
        envelope: String,
        /// Where to write the receipt (JSON).
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a receipt offline, with only the configured public keys
    /// (audit.verifier_key, and audit.witnesses for audit.witness_quorum).
    VerifyReceipt { file: PathBuf },
    /// Restore an exported bundle into the empty LEDGER of a rebuilt
    /// cluster, as the operator, before the audit service starts
    /// (docs/runbooks/restore-from-the-ledger.md).
    Restore { bundle: PathBuf },
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

impl ReplayArgs {
    /// The filter in words, for the consultation record (ids only, no personal data).
    fn scope(&self) -> String {
        let parts = [
            ("from", self.from.map(|v| v.to_string())),
            ("to", self.to.map(|v| v.to_string())),
            ("since", self.since.clone()),
            ("until", self.until.clone()),
            ("agency", self.agency.clone()),
            ("case", self.case.clone()),
            ("token", self.token.clone()),
            ("operation", self.operation.clone()),
        ];
        parts
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| format!("--{k} {v}")))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The filter as the audit service's scoped reading takes it too (one
    /// parser of the flags for both).
    fn request(&self, grant: &str) -> liaison_audit::scoped::RecordsRequest {
        liaison_audit::scoped::RecordsRequest {
            grant: grant.to_owned(),
            from: self.from,
            to: self.to,
            since: self.since.clone(),
            until: self.until.clone(),
            agency: self.agency.clone(),
            case: self.case.clone(),
            token: self.token.clone(),
            operation: self.operation.clone(),
        }
    }

    fn filter(&self) -> Result<Filter> {
        self.request("").filter().map_err(|e| anyhow!("--{e}"))
    }
}

/// A progress line over the ledger's records as they are now (none if the
/// ledger's size cannot be read: the read that follows will say why).
async fn ledger_progress(access: &Access, what: &'static str) -> Progress {
    // Records: a LEDGER message holds a block of entries. Its last block
    // says how many; an auditor reading through a grant cannot fetch it, so
    // the progress line then goes without a total.
    let total = match access {
        Access::Granted(..) => 0,
        Access::Direct(js) => liaison_audit::verify::ledger_end(js)
            .await
            .map_or(0, |(_, _, records)| records),
    };
    Progress::new(what, total)
}

/// Writes replayed records in the format asked for.
struct Rows<W: std::io::Write> {
    out: W,
    format: ReplayFormat,
}

impl<W: std::io::Write> Rows<W> {
    fn start(mut out: W, format: ReplayFormat) -> std::io::Result<Self> {
        match format {
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
        Ok(Self { out, format })
    }

    fn write(
        &mut self,
        index: u64,
        record: &liaison_proto::v1::AuditRecord,
    ) -> std::io::Result<()> {
        let out = &mut self.out;
        match self.format {
            ReplayFormat::Ndjson => {
                let mut json = liaison_proto::json::to_json("AuditRecord", record);
                json["index"] = json!(index);
                writeln!(out, "{json}")
            }
            ReplayFormat::Csv => writeln!(out, "{}", replay::csv_line(&replay::row(index, record))),
            ReplayFormat::Table => {
                let r = replay::row(index, record);
                writeln!(
                    out,
                    "{:>6}  {:<30}  {:<12}  {:<24}  {:<12}  {:<24}  {}",
                    r[0], r[1], r[2], r[3], r[4], r[6], r[7]
                )
            }
        }
    }

    fn finish(mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Prints the records that pass the filter, as the ledger is verified.
async fn replay_ledger(
    access: &Access,
    config: &Config,
    args: &ReplayArgs,
    filter: &Filter,
) -> Result<ExitCode> {
    let verifier = trusted_key(config)?;
    let mut rows = Rows::start(
        std::io::BufWriter::new(std::io::stdout().lock()),
        args.format,
    )?;
    let mut shown = 0u64;
    let mut written = Ok(());
    let mut progress = ledger_progress(access, "replaying").await;
    let report = liaison_audit::verify::verify(access.clone(), &verifier, |entry, record| {
        progress.tick(entry.index + 1);
        if written.is_err() || !filter.matches(entry.index, record) {
            return;
        }
        shown += 1;
        written = rows.write(entry.index, record);
    })
    .await?;
    progress.finish();
    written?;
    rows.finish()?;
    eprintln!("{shown} of {} records shown", report.verified);
    if report.intact() {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(print_report(&report))
    }
}

/// A scoped auditor's replay: the audit service reads and verifies the
/// ledger and answers with the records inside the auditor's scope that
/// pass the filter (`liaison_audit::scoped`).
async fn replay_scoped(
    client: &async_nats::Client,
    reply: &ConsultReply,
    args: &ReplayArgs,
) -> Result<ExitCode> {
    let mut rows = Rows::start(
        std::io::BufWriter::new(std::io::stdout().lock()),
        args.format,
    )?;
    let last = scoped_records(client, &args.request(&reply.grant), |index, record| {
        rows.write(index, record)
    })
    .await?;
    rows.finish()?;
    eprintln!(
        "{} records shown, within {} ({} records verified by the audit service{}){}",
        last.shown,
        reply.scope,
        last.verified,
        if last.intact {
            ", intact"
        } else {
            ", NOT intact"
        },
        if last.note.is_empty() {
            String::new()
        } else {
            format!(": {}", last.note)
        }
    );
    Ok(if last.intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// A scoped grant's records (`request`), read and verified by the audit
/// service, each handed to `each` with its index; the last page (counts,
/// whether the ledger verified, notes).
pub(super) async fn scoped_records(
    client: &async_nats::Client,
    request: &liaison_audit::scoped::RecordsRequest,
    mut each: impl FnMut(u64, &liaison_proto::v1::AuditRecord) -> std::io::Result<()>,
) -> Result<liaison_audit::scoped::Page> {
    use futures_util::StreamExt as _;
    use liaison_audit::scoped::Page;
    let inbox = client.new_inbox();
    let mut pages = client.subscribe(inbox.clone()).await?;
    client
        .publish_with_reply(
            subjects::RECORDS_REQUEST,
            inbox,
            serde_json::to_vec(request)?.into(),
        )
        .await?;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(120), pages.next())
            .await
            .map_err(|_| anyhow!("the audit service sent no records within 120 s"))?
            .ok_or_else(|| anyhow!("the audit service's answer ended early"))?;
        let mut page: Page =
            serde_json::from_slice(&message.payload).context("the audit service's records")?;
        if !page.code.is_empty() {
            bail!("reading refused ({}): {}", page.code, page.note);
        }
        for mut json in std::mem::take(&mut page.records) {
            let index = json["index"].as_u64().unwrap_or_default();
            if let Some(fields) = json.as_object_mut() {
                fields.remove("index");
            }
            let record: liaison_proto::v1::AuditRecord =
                liaison_proto::json::from_json("AuditRecord", &json.to_string())?;
            each(index, &record)?;
        }
        if !page.more {
            return Ok(page);
        }
    }
}

pub(super) fn trusted_key(config: &Config) -> Result<NoteVerifier> {
    if config.audit.verifier_key.is_empty() {
        bail!(
            "no verifier key: set audit.verifier_key in the config file or LIAISON_AUDIT_VERIFIER_KEY"
        );
    }
    Ok(NoteVerifier::parse(&config.audit.verifier_key)?)
}

async fn auditor(
    cli: &Cli,
    who: &ConsultArgs,
) -> Result<(async_nats::Client, async_nats::jetstream::Context)> {
    let client = cli.connect_auditor(&who.auditor).await?;
    Ok((client.clone(), async_nats::jetstream::new(client)))
}

/// Connects as the auditor and has the audit service record this
/// consultation (`action`, `scope`) in the ledger; the grant it answers with
/// is the auditor's only way to read LEDGER.
async fn consulted(cli: &Cli, who: &ConsultArgs, action: &str, scope: String) -> Result<Access> {
    let (client, js, reply) = consult(cli, who, action, scope).await?;
    if reply.scoped {
        bail!(
            "auditor {} may read only part of the ledger ({}): `liaison audit replay` reads it",
            who.auditor,
            reply.scope
        );
    }
    Ok(Access::Granted(js, Grant::new(client, &reply)))
}

/// The consultation itself: the auditor's connection and the granted reply.
pub(super) async fn consult(
    cli: &Cli,
    who: &ConsultArgs,
    action: &str,
    scope: String,
) -> Result<(
    async_nats::Client,
    async_nats::jetstream::Context,
    ConsultReply,
)> {
    let purpose = who
        .purpose
        .as_deref()
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| anyhow!("state the purpose of this consultation with --purpose (e.g. log-review): it is recorded in the ledger"))?;
    let key_path = who.auditor_key.clone().unwrap_or_else(|| {
        PathBuf::from(format!("deploy/audit/dev-auditor-keys/{}.pem", who.auditor))
    });
    let pem = keys::read_key(&key_path)?;
    let key = liaison_core::tokens::Signer::from_pem(&pem, None)
        .map_err(|e| anyhow!("auditor signing key: {e}"))?;
    let person = who
        .person
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| who.auditor.clone());
    let token = mint(&key, &who.auditor, &person, AUDIENCE)?;
    let (client, js) = auditor(cli, who).await?;
    let request = ConsultRequest {
        auditor: who.auditor.clone(),
        purpose: purpose.to_owned(),
        action: action.to_owned(),
        scope,
    };
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(subjects::TOKEN_HEADER, token.as_str());
    let answer = tokio::time::timeout(
        Duration::from_secs(15),
        client.request_with_headers(
            subjects::CONSULT_REQUEST,
            headers,
            serde_json::to_vec(&request)?.into(),
        ),
    )
    .await
    .map_err(|_| anyhow!("the audit service did not answer within 15 s"))
    .and_then(|r| r.map_err(|e| anyhow!("audit service unreachable: {e}")));
    let reply = match answer {
        Ok(reply) => reply,
        Err(e) if action == "verify" => {
            return Err(e.context(
                "auditors read the ledger only through a recorded consultation; to verify a \
                 ledger the audit service will not run on, an operator can run `liaison audit \
                 verify --unrecorded` (operator credentials; not recorded in the ledger)",
            ));
        }
        Err(e) => {
            return Err(e.context("the consultation could not be recorded, so it is not made"));
        }
    };
    let reply: ConsultReply =
        serde_json::from_slice(&reply.payload).context("the audit service's reply")?;
    if !reply.granted {
        bail!("consultation refused ({}): {}", reply.code, reply.reason);
    }
    Ok((client, js, reply))
}

/// Reads the ledger with the operator's credentials, without a
/// consultation (a ledger the audit service will not run on); says so.
async fn unrecorded(cli: &Cli) -> Result<Access> {
    let target = cli.target(users::OPERATOR)?;
    let client = connect(
        &target.url,
        &target.credentials,
        &target.tls,
        "liaison-operator",
    )
    .await?;
    eprintln!(
        "warning: reading with operator credentials; this verification is not recorded in the ledger"
    );
    Ok(Access::Direct(async_nats::jetstream::new(client)))
}

/// Writes a receipt for `envelope` (a recorded consultation).
async fn receipt(
    cli: &Cli,
    who: &ConsultArgs,
    config: &liaison_runtime::config::Config,
    envelope: &str,
    out: &PathBuf,
) -> Result<ExitCode> {
    let verifier = trusted_key(config)?;
    let witnesses = liaison_audit::cosign::verifiers(config).map_err(|e| anyhow!(e))?;
    liaison_audit::receipt::check_envelope(envelope).map_err(|e| anyhow!(e))?;
    let access = consulted(cli, who, "receipt", format!("envelope {envelope}")).await?;
    let (receipt, size) = liaison_audit::receipt::build(access, &verifier, &witnesses, envelope)
        .await
        .map_err(|e| anyhow!(e))?;
    std::fs::write(out, serde_json::to_string_pretty(&receipt)?)
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "Receipt for {envelope}: {} records, proved against the checkpoint of {size} records, written to {}",
        receipt.proofs.len(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Leaf hashes of every intact record, and the latest signed checkpoint.
async fn tree(access: &Access, verifier: &NoteVerifier) -> Result<(Vec<Hash>, String)> {
    let mut leaves = Vec::new();
    let inspector = liaison_audit::verify::scan(access.clone(), verifier, |entry| {
        leaves.push(merkle::leaf_hash(&entry.record))
    })
    .await
    .map_err(|e| anyhow!(e))?;
    let report = inspector.finish();
    if let Some(finding) = report.first_finding {
        bail!("the ledger does not verify: {finding}");
    }
    let notes = liaison_audit::verify::checkpoints(access.js())
        .await
        .map_err(|e| anyhow!(e))?;
    let latest = notes
        .last()
        .cloned()
        .ok_or_else(|| anyhow!("no signed checkpoint yet: run `liaison audit checkpoint`"))?;
    Ok((leaves, latest))
}

pub async fn run(cli: &Cli, args: &AuditArgs) -> Result<ExitCode> {
    let config = cli.load_config()?;
    let who = &args.consult;
    match &args.command {
        AuditCommand::Verify {
            bundle: Some(path), ..
        } => {
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
            let report = bundle.inspect(&verifier);
            let witnessing = witnessing(&config, &verifier, &bundle.checkpoints, &report)?;
            Ok(print_witnessed(print_report(&report), &report, &witnessing))
        }
        AuditCommand::Verify {
            bundle: None,
            unrecorded: recorded_not,
        } => {
            let verifier = trusted_key(&config)?;
            let access = if *recorded_not {
                unrecorded(cli).await?
            } else {
                consulted(cli, who, "verify", String::new()).await?
            };
            let notes = liaison_audit::verify::checkpoints(access.js()).await?;
            let mut progress = ledger_progress(&access, "verifying").await;
            let report = liaison_audit::verify::verify(access, &verifier, |entry, _| {
                progress.tick(entry.index + 1)
            })
            .await?;
            progress.finish();
            let witnessing = witnessing(&config, &verifier, &notes, &report)?;
            Ok(print_witnessed(print_report(&report), &report, &witnessing))
        }
        AuditCommand::Receipt { envelope, out } => receipt(cli, who, &config, envelope, out).await,
        AuditCommand::VerifyReceipt { file } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let receipt = liaison_audit::receipt::Receipt::parse(&text)
                .map_err(|e| anyhow!("{}: {e}", file.display()))?;
            let witnesses = liaison_audit::cosign::verifiers(&config)
                .map_err(|e| anyhow!("audit.witnesses: {e}"))?;
            match receipt.check(
                &trusted_key(&config)?,
                &witnesses,
                config.audit.witness_quorum,
            ) {
                Ok(proven) => {
                    for p in &proven {
                        println!("{}", liaison_audit::receipt::describe(p));
                    }
                    let first = &proven[0];
                    println!(
                        "Receipt verified: {} records of {} are in the ledger of {} records signed by {}{}",
                        proven.len(),
                        receipt.envelope,
                        first.size,
                        config.audit.origin,
                        if first.witnesses.is_empty() {
                            String::new()
                        } else {
                            format!(", cosigned by {}", first.witnesses.join(", "))
                        }
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    println!("Receipt REFUSED: {e}");
                    Ok(ExitCode::from(2))
                }
            }
        }
        AuditCommand::Checkpoint => {
            let (client, _) = auditor(cli, who).await?;
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
            let access = consulted(cli, who, "prove", format!("record {index}")).await?;
            let (leaves, note) = tree(&access, &verifier).await?;
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
            let access = consulted(
                cli,
                who,
                "consistency",
                format!("from checkpoint size {}", old.size),
            )
            .await?;
            let (leaves, note) = tree(&access, &verifier).await?;
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
            let access = consulted(cli, who, "export", String::new()).await?;
            let bundle = Bundle::export(access, &config.audit.origin, &verifier)
                .await
                .map_err(|e| anyhow!(e))?;
            let report = bundle.inspect(&verifier);
            std::fs::write(file, serde_json::to_string(&bundle)?)
                .with_context(|| format!("cannot write {}", file.display()))?;
            println!(
                "Exported {} records and {} checkpoints ({} blocks) to {}",
                bundle.records(),
                bundle.checkpoints.len(),
                bundle.blocks.len(),
                file.display()
            );
            Ok(print_report(&report))
        }
        AuditCommand::Restore { bundle } => super::ledger_restore::run(cli, &config, bundle).await,
        AuditCommand::Replay(args) => {
            let filter = args.filter()?;
            let (client, js, reply) = consult(cli, who, "replay", args.scope()).await?;
            if reply.scoped {
                return replay_scoped(&client, &reply, args).await;
            }
            let access = Access::Granted(js, Grant::new(client, &reply));
            replay_ledger(&access, &config, args, &filter).await
        }
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
/// Whether the configured quorum of witnesses cosigned the verified ledger.
fn witnessing(
    config: &liaison_runtime::config::Config,
    verifier: &NoteVerifier,
    notes: &[String],
    report: &Report,
) -> Result<liaison_audit::cosign::Witnessing> {
    let witnesses =
        liaison_audit::cosign::verifiers(config).map_err(|e| anyhow!("audit.witnesses: {e}"))?;
    Ok(liaison_audit::cosign::Witnessing::of(
        verifier,
        notes,
        &witnesses,
        config.audit.witness_quorum,
        report.verified,
    ))
}

/// Says whether the ledger is witnessed; exit 2 if a quorum is required and
/// no checkpoint of it has one (a ledger rewritten by whoever holds the
/// checkpoint key has none).
fn print_witnessed(
    printed: ExitCode,
    report: &Report,
    witnessing: &liaison_audit::cosign::Witnessing,
) -> ExitCode {
    if !report.intact() || (witnessing.quorum == 0 && witnessing.witnesses.is_empty()) {
        return printed;
    }
    if witnessing.holds() {
        println!("Ledger {}", witnessing.words());
        printed
    } else {
        println!("Ledger {}", witnessing.words());
        ExitCode::from(2)
    }
}

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
                "Ledger incomplete: {} records in {} of {} LEDGER messages read.",
                report.verified, report.read, report.total
            ),
        }
        ExitCode::from(2)
    }
}
