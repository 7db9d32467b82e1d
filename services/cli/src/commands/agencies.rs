//! `liaison agencies …`: the live registry and membership
//! (docs/decisions/0020-live-membership.md). `list` and `show` read the
//! live registry; every change is a named operator's request, signed with
//! the operator's key and sent to the gateways (`liaison.admin.agencies`),
//! which check it with the registry file's rules, record it in the ledger
//! and put it in force everywhere within a second, nothing restarted.

use super::Cli;
use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use liaison_core::AgencyId;
use liaison_core::connect::connect;
use liaison_runtime::live_registry::{self, BUCKET};
use liaison_runtime::registry::{Agency, Registry};
use liaison_runtime::users;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum AgenciesCommand {
    /// The agencies in the live registry, with their standing.
    List {
        /// One JSON object per agency, in an array.
        #[arg(long)]
        json: bool,
    },
    /// One agency's entry (its `[[agency]]` block), revision and standing.
    Show {
        /// The agency.
        agency: String,
    },
    /// Register an agency: FILE holds its one `[[agency]]` block, keys
    /// included, in the registry file's format.
    Add(EntryArgs),
    /// Replace an agency's entry with the one `[[agency]]` block in FILE.
    Update(EntryArgs),
    /// Cut an agency off at once: its logins and envelopes, case queries and
    /// inbox reads are refused `agency_suspended`, its NATS connections
    /// closed, its copies held.
    Suspend(ChangeArgs),
    /// Let a suspended agency log in, share and read again; its held copies follow.
    Resume(ChangeArgs),
    /// Remove an agency from the registry: it can no longer log in or send;
    /// copies already made for it are kept until DELIVERY's retention ends.
    Remove(ChangeArgs),
    /// An agency's signing keys: add, retire or revoke one.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Make the live registry what FILE (a whole registry) says: shows the
    /// difference, and applies it with --yes, one recorded change per agency.
    Import(ImportArgs),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Register another signing key (FILE: one key entry, `public_key = …`
    /// with optional `alg`, `kid`, `not_before`, `not_after`).
    Add(KeyAddArgs),
    /// Retire one of an agency's keys (its `kid`): tokens signed with it are
    /// no longer accepted, as if it had never been registered.
    Retire(KidArgs),
    /// Revoke one of an agency's keys (its `kid`): its tokens are refused at
    /// once, on every gateway, naming the revocation, and it can never be
    /// registered again.
    Revoke(KidArgs),
}

#[derive(Debug, Args)]
pub(super) struct Operator {
    /// Why (recorded in the ledger; no personal data).
    #[arg(long)]
    pub(super) reason: String,
    /// The operator making the change, as registered in `paths.operators`.
    #[arg(long)]
    operator: String,
    /// The operator's Ed25519 signing key [default: deploy/operators/dev-operator-keys/OPERATOR.pem].
    #[arg(long)]
    key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ChangeArgs {
    /// The agency.
    agency: String,
    #[command(flatten)]
    by: Operator,
}

#[derive(Debug, Args)]
pub struct EntryArgs {
    /// A TOML file holding one `[[agency]]` block.
    #[arg(long)]
    file: PathBuf,
    #[command(flatten)]
    by: Operator,
}

#[derive(Debug, Args)]
pub struct KeyAddArgs {
    /// The agency.
    agency: String,
    /// A TOML file holding one key entry.
    #[arg(long)]
    file: PathBuf,
    #[command(flatten)]
    by: Operator,
}

#[derive(Debug, Args)]
pub struct KidArgs {
    /// The agency.
    agency: String,
    /// The key's id (as `liaison keys gen` printed it, or its thumbprint).
    kid: String,
    #[command(flatten)]
    by: Operator,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A registry file (`[[agency]]` blocks).
    file: PathBuf,
    /// Apply the difference (without it, only show it).
    #[arg(long)]
    yes: bool,
    #[command(flatten)]
    by: Operator,
}

pub async fn run(cli: &Cli, command: &AgenciesCommand) -> Result<ExitCode> {
    match command {
        AgenciesCommand::List { json } => list(cli, *json).await,
        AgenciesCommand::Show { agency } => show(cli, agency).await,
        AgenciesCommand::Import(args) => import(cli, args).await,
        AgenciesCommand::Add(args) | AgenciesCommand::Update(args) => {
            let action = if matches!(command, AgenciesCommand::Add(_)) {
                "add"
            } else {
                "update"
            };
            let entry = read(&args.file)?;
            let agency = one_agency(&entry, &args.file)?;
            let body = serde_json::json!({
                "action": action, "agency": agency.id.as_str(), "reason": args.by.reason, "entry": entry,
            });
            let answer = ask(cli, &args.by, body).await?;
            println!(
                "{}; recorded in the ledger, in force everywhere",
                changed(&answer)
            );
            Ok(ExitCode::SUCCESS)
        }
        AgenciesCommand::Remove(args) => {
            let body = serde_json::json!({
                "action": "remove", "agency": args.agency, "reason": args.by.reason,
            });
            let answer = ask(cli, &args.by, body).await?;
            println!(
                "{}; its NATS connections closed, its copies kept until DELIVERY's retention ends",
                changed(&answer)
            );
            Ok(ExitCode::SUCCESS)
        }
        AgenciesCommand::Keys(KeysCommand::Add(args)) => {
            let entry = read(&args.file)?;
            let body = serde_json::json!({
                "action": "add-key", "agency": args.agency, "reason": args.by.reason, "entry": entry,
            });
            let answer = ask(cli, &args.by, body).await?;
            println!("{}; recorded in the ledger", changed(&answer));
            Ok(ExitCode::SUCCESS)
        }
        AgenciesCommand::Keys(KeysCommand::Retire(args)) => {
            let body = serde_json::json!({
                "action": "retire-key", "agency": args.agency, "kid": args.kid, "reason": args.by.reason,
            });
            let answer = ask(cli, &args.by, body).await?;
            println!("{}; recorded in the ledger", changed(&answer));
            Ok(ExitCode::SUCCESS)
        }
        AgenciesCommand::Keys(KeysCommand::Revoke(args)) => {
            let body = serde_json::json!({
                "action": "revoke", "agency": args.agency, "kid": args.kid, "reason": args.by.reason,
            });
            ask(cli, &args.by, body).await?;
            println!(
                "{} key {} revoked by {} ({}); recorded in the ledger, in force at every gateway",
                args.agency, args.kid, args.by.operator, args.by.reason
            );
            Ok(ExitCode::SUCCESS)
        }
        AgenciesCommand::Suspend(args) | AgenciesCommand::Resume(args) => {
            let (action, done) = if matches!(command, AgenciesCommand::Suspend(_)) {
                ("suspend", "suspended")
            } else {
                ("resume", "resumed")
            };
            let body = serde_json::json!({
                "action": action, "agency": args.agency, "reason": args.by.reason,
            });
            ask(cli, &args.by, body).await?;
            println!(
                "{} {done} by {} ({}); recorded in the ledger, in force at every gateway",
                args.agency, args.by.operator, args.by.reason
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read(path: &PathBuf) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The one agency `text` (from `path`) registers.
fn one_agency(text: &str, path: &std::path::Path) -> Result<Agency> {
    Registry::parse_one(text).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}{}",
            path.display(),
            if e.starts_with("give exactly one") {
                " (a whole registry goes to `liaison agencies import`)"
            } else {
                ""
            }
        )
    })
}

fn changed(answer: &serde_json::Value) -> String {
    answer["changed"].as_str().unwrap_or("changed").to_owned()
}

/// Sends one signed change to the gateways; their answer, or what was wrong.
async fn ask(cli: &Cli, by: &Operator, body: serde_json::Value) -> Result<serde_json::Value> {
    ask_on(cli, liaison_core::subjects::ADMIN_AGENCIES, by, body).await
}

/// A named operator's signed request on `subject`, answered by a gateway.
pub(super) async fn ask_on(
    cli: &Cli,
    subject: &str,
    by: &Operator,
    body: serde_json::Value,
) -> Result<serde_json::Value> {
    let client = operator_client(cli).await?;
    liaison_system::admin::ask_on(&client, subject, &token(by)?, &body).await
}

fn token(by: &Operator) -> Result<String> {
    let key = by.key.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "deploy/operators/dev-operator-keys/{}.pem",
            by.operator
        ))
    });
    // Long enough for an import's many changes.
    liaison_system::admin::operator_token(&key, &by.operator, 300)
}

async fn operator_client(cli: &Cli) -> Result<async_nats::Client> {
    let target = cli.target(users::OPERATOR)?;
    Ok(connect(
        &target.url,
        &target.credentials,
        &target.tls,
        "liaison-agencies",
    )
    .await?)
}

/// The live registry as the operator reads it, with each agency's standing.
async fn live(cli: &Cli) -> Result<(Registry, BTreeMap<String, String>)> {
    let client = operator_client(cli).await?;
    let js = async_nats::jetstream::new(client);
    let (registry, _) = live_registry::Follower::open(&js)
        .await
        .map_err(anyhow::Error::msg)?;
    let mut standing = BTreeMap::new();
    if let Ok(kv) = js
        .get_key_value(liaison_runtime::provision::MEMBERSHIP_BUCKET)
        .await
    {
        for agency in registry.agencies() {
            if let Ok(Some(value)) = kv.get(agency.id.as_str()).await
                && let Ok(status) = serde_json::from_slice::<serde_json::Value>(&value)
                && status["suspended"].as_bool() == Some(true)
            {
                standing.insert(
                    agency.id.to_string(),
                    format!(
                        "suspended by {} ({})",
                        status["by"].as_str().unwrap_or("?"),
                        status["reason"].as_str().unwrap_or("")
                    ),
                );
            }
        }
    }
    Ok((registry, standing))
}

async fn list(cli: &Cli, json: bool) -> Result<ExitCode> {
    let (registry, standing) = live(cli).await?;
    let status = |id: &AgencyId| {
        standing
            .get(id.as_str())
            .cloned()
            .unwrap_or_else(|| "active".to_owned())
    };
    if json {
        let rows: Vec<serde_json::Value> = registry
            .agencies()
            .map(|a| {
                serde_json::json!({
                    "id": a.id.as_str(),
                    "name": a.name,
                    "kind": a.kind.as_str(),
                    "clearance": a.clearance,
                    "areas": a.areas,
                    "region": a.region,
                    "sector": a.sector,
                    "keys": a.keys.iter().filter_map(|k| k.key_id().ok()).collect::<Vec<_>>(),
                    "nats_keys": a.nats_keys,
                    "status": status(&a.id),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("| agency | kind | clearance | areas | keys | NATS keys | status |");
    println!("|---|---|---|---|---|---|---|");
    for a in registry.agencies() {
        println!(
            "| {} | {} | {:?} | {} | {} | {} | {} |",
            a.id,
            a.kind.as_str(),
            a.clearance,
            a.areas.join(", "),
            a.keys.len(),
            a.nats_keys.len(),
            status(&a.id)
        );
    }
    println!("{} agencies in the live registry", registry.len());
    Ok(ExitCode::SUCCESS)
}

async fn show(cli: &Cli, agency: &str) -> Result<ExitCode> {
    let id = AgencyId::parse(agency)?;
    let client = operator_client(cli).await?;
    let js = async_nats::jetstream::new(client);
    let kv = js
        .get_key_value(BUCKET)
        .await
        .context("the live registry")?;
    let entry = kv
        .entry(id.as_str())
        .await?
        .filter(|e| e.operation == async_nats::jetstream::kv::Operation::Put);
    let Some(entry) = entry else {
        bail!("{id} is not in the live registry (`liaison agencies list` shows who is)");
    };
    let agency =
        live_registry::parse_entry(id.as_str(), &entry.value).map_err(anyhow::Error::msg)?;
    let (_, standing) = live(cli).await?;
    println!(
        "# {id}: revision {} of the live registry, written {}",
        entry.revision, entry.created
    );
    println!(
        "# status: {}",
        standing.get(id.as_str()).map_or("active", String::as_str)
    );
    let kids: Vec<String> = agency.keys.iter().filter_map(|k| k.key_id().ok()).collect();
    println!("# key ids: {}", kids.join(", "));
    print!("{}", agency.to_toml());
    Ok(ExitCode::SUCCESS)
}

async fn import(cli: &Cli, args: &ImportArgs) -> Result<ExitCode> {
    let wanted = Registry::load(&args.file)?;
    let (current, _) = live(cli).await?;
    let mut changes: Vec<(&str, &Agency, String)> = Vec::new();
    for agency in wanted.agencies() {
        match current.get(&agency.id) {
            None => changes.push((
                "add",
                agency,
                liaison_gateway::enrolment::describe(None, Some(agency)),
            )),
            Some(old) if old != agency => changes.push((
                "update",
                agency,
                liaison_gateway::enrolment::describe(Some(old), Some(agency)),
            )),
            Some(_) => {}
        }
    }
    for agency in current.agencies() {
        if wanted.get(&agency.id).is_none() {
            changes.push((
                "remove",
                agency,
                liaison_gateway::enrolment::describe(Some(agency), None),
            ));
        }
    }
    let unchanged = wanted.len() - changes.iter().filter(|c| c.0 != "remove").count();
    for (action, _, what) in &changes {
        println!("{action:6} {what}");
    }
    println!(
        "{} to add, {} to update, {} to remove, {unchanged} unchanged",
        changes.iter().filter(|c| c.0 == "add").count(),
        changes.iter().filter(|c| c.0 == "update").count(),
        changes.iter().filter(|c| c.0 == "remove").count(),
    );
    if changes.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    if !args.yes {
        println!("Nothing changed: run again with --yes to apply these changes.");
        return Ok(ExitCode::SUCCESS);
    }
    let client = operator_client(cli).await?;
    let token = token(&args.by)?;
    let bodies: Vec<serde_json::Value> = changes
        .iter()
        .map(|(action, agency, _)| {
            let mut body = serde_json::json!({
                "action": action, "agency": agency.id.as_str(), "reason": args.by.reason,
            });
            if *action != "remove" {
                body["entry"] = agency.to_toml().into();
            }
            body
        })
        .collect();
    use futures_util::StreamExt as _;
    let results: Vec<Result<serde_json::Value>> = futures_util::stream::iter(
        bodies
            .iter()
            .map(|body| liaison_system::admin::ask(&client, &token, body)),
    )
    .buffer_unordered(16)
    .collect()
    .await;
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err().map(|e| e.to_string()))
        .collect();
    for e in &failed {
        eprintln!("{e}");
    }
    println!(
        "{} of {} changes applied, each recorded in the ledger",
        changes.len() - failed.len(),
        changes.len()
    );
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
