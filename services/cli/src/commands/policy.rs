//! `liaison policy`: check, explain and test the access policy (the Cedar
//! schema, the ISA clauses and the vocabulary in the policy directory)
//! without running anything, against the agency registry.

use super::Cli;
use anyhow::{Context as _, Result, anyhow};
use clap::{Args, Subcommand};
use liaison_core::AgencyId;
use liaison_gateway::policy::{Outcome, Policy};
use liaison_gateway::scenarios;
use liaison_proto::json;
use liaison_proto::v1::Envelope;
use liaison_runtime::registry::Registry;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Policy directory [default: paths.policies of the configuration].
    #[arg(long, global = true)]
    policies: Option<PathBuf>,
    /// Agency registry [default: paths.registry of the configuration].
    #[arg(long, global = true)]
    registry: Option<PathBuf>,
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Validate the schema, policies and vocabulary; list the clauses.
    Check,
    /// Say which clauses decide an envelope for one recipient, and which labels it may not see.
    Explain {
        /// The envelope, as JSON (e.g. deploy/examples/referral.json).
        envelope: PathBuf,
        /// The sending agency [default: the envelope's senderAgency].
        #[arg(long)]
        sender: Option<String>,
        /// The would-be recipient.
        #[arg(long)]
        recipient: String,
        /// Agencies participating in the envelope's case (comma-separated).
        #[arg(long, value_delimiter = ',')]
        participants: Vec<String>,
    },
    /// Run the policy test cases (*.toml) [default dir: POLICIES/tests].
    Test { dir: Option<PathBuf> },
    /// Who may share what with whom, by clause: for each class of senders,
    /// each kind and situation, the classifications, purposes and legal
    /// bases it may be sent on, who receives a copy seeing which labels, and
    /// how long it is kept; each clause's retention, expiry and review. Asked
    /// of the gateway's own evaluator, for the registry's agencies.
    Catalogue {
        /// The catalogue as JSON.
        #[arg(long, conflicts_with = "html")]
        json: bool,
        /// The catalogue as one HTML page.
        #[arg(long)]
        html: bool,
    },
}

pub fn run(cli: &Cli, args: &PolicyArgs) -> Result<ExitCode> {
    let config = cli.load_config()?;
    let dir = args.policies.clone().unwrap_or(config.paths.policies);
    let registry_path = args.registry.clone().unwrap_or(config.paths.registry);
    let registry = Registry::load(&registry_path)?;
    let policy = Policy::load(&dir, &registry)?;
    match &args.command {
        PolicyCommand::Check => {
            check(&policy, &dir);
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Explain {
            envelope,
            sender,
            recipient,
            participants,
        } => explain(
            &policy,
            &registry,
            envelope,
            sender.as_deref(),
            recipient,
            participants,
        ),
        PolicyCommand::Catalogue { json, html } => {
            let catalogue = liaison_gateway::catalogue::build(
                &policy,
                &registry,
                config.data.default_retention_days * 86_400,
            );
            if *json {
                println!("{}", serde_json::to_string_pretty(&catalogue)?);
            } else if *html {
                print!("{}", catalogue.html());
            } else {
                print!("{}", catalogue.text());
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Test { dir: tests } => {
            let tests = tests.clone().unwrap_or_else(|| dir.join("tests"));
            test(&policy, &registry, &tests)
        }
    }
}

/// Days before a clause's expiry or review date that `policy check` warns.
const WARN_DAYS: u64 = 30;

fn check(policy: &Policy, dir: &std::path::Path) {
    use liaison_gateway::policy::format_day;
    println!(
        "Policy set {} is valid: {} policies, sha256:{}",
        dir.display(),
        policy.len(),
        policy.digest()
    );
    println!("Clauses:");
    let terms = policy.terms();
    let today = liaison_gateway::policy::today();
    let mut warnings = Vec::new();
    for clause in policy.clauses() {
        let t = terms.get(&clause).copied().unwrap_or_default();
        let mut dates = Vec::new();
        if let Some(kept) = t.retention {
            dates.push(format!(
                "kept {}",
                liaison_gateway::policy::format_period(kept)
            ));
        }
        if let Some(e) = t.expires {
            dates.push(format!("expires {}", format_day(e)));
            if e < today {
                warnings.push(format!(
                    "{clause} LAPSED on {}: it permits nothing; renew the agreement or remove the clause",
                    format_day(e)
                ));
            } else if e < today + WARN_DAYS {
                warnings.push(format!(
                    "{clause} expires on {} ({} days): renew the agreement, or it permits nothing after that day",
                    format_day(e),
                    e - today
                ));
            }
        }
        if let Some(r) = t.review {
            dates.push(format!("review {}", format_day(r)));
            if r < today + WARN_DAYS {
                warnings.push(format!("{clause} is due for review on {}", format_day(r)));
            }
        }
        if dates.is_empty() {
            println!("  {clause}");
        } else {
            println!("  {clause}  ({})", dates.join(", "));
        }
    }
    warnings.sort();
    warnings.dedup();
    for warning in &warnings {
        println!("WARNING: {warning}");
    }
    let vocabulary = policy.vocabulary();
    println!(
        "Vocabulary: {} purposes, {} legal bases, {} caveats",
        vocabulary.purposes.len(),
        vocabulary.legal_bases.len(),
        vocabulary.caveats.len()
    );
}

fn decided(outcome: &Outcome) -> String {
    let by = if !outcome.lapsed.is_empty() && !outcome.allowed {
        format!(
            "the clause that would permit it has lapsed: {}",
            outcome.lapsed.join(", ")
        )
    } else if outcome.clauses.is_empty() {
        "no clause permits it".to_owned()
    } else if outcome.allowed {
        format!("permitted by {}", outcome.clauses.join(", "))
    } else {
        format!("forbidden by {}", outcome.clauses.join(", "))
    };
    let errors = if outcome.errors.is_empty() {
        String::new()
    } else {
        format!(" (errors: {})", outcome.errors.join("; "))
    };
    format!(
        "{}: {by}{errors}",
        if outcome.allowed { "yes" } else { "no" }
    )
}

fn explain(
    policy: &Policy,
    registry: &Registry,
    file: &PathBuf,
    sender: Option<&str>,
    recipient: &str,
    participants: &[String],
) -> Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut envelope: Envelope =
        json::from_json("Envelope", &text).with_context(|| format!("{}", file.display()))?;
    if let Some(sender) = sender {
        envelope.sender_agency = sender.to_owned();
    }
    let sender = AgencyId::parse(&envelope.sender_agency).map_err(|e| {
        anyhow!(
            "{}: senderAgency: {e} (give --sender AGENCY)",
            file.display()
        )
    })?;
    let recipient = AgencyId::parse(recipient).map_err(|e| anyhow!("--recipient: {e}"))?;
    let participants = participants
        .iter()
        .map(|p| AgencyId::parse(p).map_err(|e| anyhow!("--participants: {e}")))
        .collect::<Result<Vec<_>>>()?;
    println!(
        "Envelope {} from {sender}: {} for {:?} under {:?}",
        if envelope.id.is_empty() {
            "(no id)"
        } else {
            &envelope.id
        },
        envelope.kind(),
        envelope.purpose,
        envelope.legal_basis
    );
    if let Err((field, reason)) = policy.vocabulary().check(&envelope) {
        println!("Refused before policy: {field} {reason}");
        return Ok(ExitCode::from(1));
    }
    let explanation = policy.explain(
        &sender,
        &envelope,
        registry,
        &liaison_gateway::policy::Facts::case(&participants),
        &recipient,
    )?;
    println!("May {sender} send it? {}", decided(&explanation.send));
    if !explanation.send.allowed {
        return Ok(ExitCode::from(1));
    }
    let copy = &explanation.copy;
    println!(
        "Does {recipient} receive a copy? {}",
        decided(&copy.receive)
    );
    if copy.receive.allowed {
        println!("What {recipient} may see:");
        for (label, see) in &copy.labels {
            println!("  {:<13} {}", label.short_name(), decided(see));
        }
        let withheld: Vec<&str> = copy
            .labels
            .iter()
            .filter(|(_, see)| !see.allowed)
            .map(|(l, _)| l.short_name())
            .collect();
        println!(
            "Withheld from {recipient}: {}",
            if withheld.is_empty() {
                "nothing".to_owned()
            } else {
                withheld.join(", ")
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn test(policy: &Policy, registry: &Registry, dir: &std::path::Path) -> Result<ExitCode> {
    let run = scenarios::run_dir(policy, registry, dir).map_err(|e| anyhow!(e))?;
    for (file, case) in &run.passed {
        println!("ok    {file}: {case}");
    }
    for failure in &run.failed {
        println!("FAIL  {}: {}", failure.file, failure.case);
        for problem in &failure.problems {
            println!("        {problem}");
        }
    }
    println!(
        "policy tests: {} passed, {} failed",
        run.passed.len(),
        run.failed.len()
    );
    Ok(if run.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
