//! Agency commands: `send`, `inbox`, `token`, `keys gen`.

use super::Cli;
use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use liaison_client::AgencyClient;
use liaison_core::AgencyId;
use liaison_core::time::unix_now;
use liaison_core::tokens::{KeyAlg, Signer};
use liaison_proto::json;
use liaison_proto::v1::verdict::Outcome;
use liaison_proto::v1::{DataLabel, Delivery, Envelope, Verdict};
use liaison_system::keys;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The sending agency (as registered).
    #[arg(long)]
    agency: String,
    /// The agency's Ed25519 signing key [default: deploy/agencies/dev-keys/AGENCY.pem].
    #[arg(long)]
    key: Option<PathBuf>,
    /// The envelope as JSON (protobuf JSON mapping). Empty `id`, `senderAgency`,
    /// `author` and `sentAt` are filled in.
    file: PathBuf,
}

#[derive(Debug, Args)]
pub struct InboxArgs {
    /// The receiving agency.
    #[arg(long)]
    agency: String,
    /// The agency's signing key [default: deploy/agencies/dev-keys/AGENCY.pem].
    #[arg(long)]
    key: Option<PathBuf>,
    /// One JSON object per line, for machines.
    #[arg(long)]
    json: bool,
    /// Take at most this many deliveries.
    #[arg(long, default_value_t = 100)]
    max: usize,
    /// Seconds to wait for the first delivery.
    #[arg(long, default_value_t = 1)]
    wait: u64,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new key pair for an agency or auditor: writes DIR/ID.pem (0600)
    /// and prints the `[[agency.keys]]` entry to put in the registry.
    Gen {
        /// The agency (or auditor) id the key is for.
        #[arg(long, alias = "auditor")]
        agency: String,
        /// EdDSA (Ed25519) or ES256 (P-256).
        #[arg(long, default_value = "EdDSA", value_parser = parse_alg)]
        alg: KeyAlg,
        #[arg(long, default_value = keys::DEV_KEYS)]
        out: PathBuf,
        /// Replace DIR/ID.pem if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Make a new NKey for an agency's NATS logins: writes DIR/ID.nk (the
    /// seed, 0600; it never leaves the agency) and prints the `nats_keys`
    /// line to put in its registry entry.
    GenNats {
        /// The agency the NKey is for.
        #[arg(long)]
        agency: String,
        #[arg(long, default_value = keys::DEV_KEYS)]
        out: PathBuf,
        /// Replace DIR/ID.nk if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Make a new partnership subject key (pseudonymous subject tokens,
    /// `liaison link token`): 32 random bytes as base64url, written to FILE
    /// (0600). Never overwrites a key. Give it to every agency of the
    /// partnership over a secure channel; never to Liaison's services.
    GenLink {
        /// Where to write the key (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Make a key-encryption key (the gateway wraps every data key with it:
    /// docs/decisions/0022-encryption-at-rest-and-crypto-erasure.md). Without
    /// --out, prints its `ID = "HEX"` line for the `[keys]` of an existing
    /// file (a rotation); with --out, writes a new key file (0600) with it
    /// as `current`. Never overwrites a file.
    GenKek {
        /// The key's id (1 to 64 of A-Z, a-z, 0-9, '-' and '_'), e.g. the month.
        #[arg(long)]
        id: String,
        /// A new key file to write (`data.kek_file`; must not exist).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn parse_alg(text: &str) -> Result<KeyAlg, String> {
    match text.to_ascii_uppercase().as_str() {
        "EDDSA" | "ED25519" => Ok(KeyAlg::EdDSA),
        "ES256" | "P-256" | "P256" => Ok(KeyAlg::ES256),
        _ => Err(format!("{text:?} is not EdDSA or ES256")),
    }
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Sign a short-lived token and print it (for the HTTPS door, or to test a
    /// deployment by hand). The gateway accepts it for its lifetime; each
    /// token carries a fresh jti.
    Mint {
        /// The agency (or auditor) the token is issued by (`iss`).
        #[arg(long, alias = "auditor")]
        agency: String,
        /// The person or system acting for it (`sub`): an envelope's `author`
        /// must be this [default: AGENCY-case-system].
        #[arg(long)]
        subject: Option<String>,
        /// Private key (PKCS#8 PEM) [default: the agency's development key].
        #[arg(long)]
        key: Option<PathBuf>,
        /// Key id to put in `kid` [default: the key's RFC 7638 thumbprint].
        #[arg(long)]
        kid: Option<String>,
        /// `aud` [default: the gateway's audience from the configuration].
        #[arg(long)]
        audience: Option<String>,
        /// Lifetime in seconds (the gateway accepts at most its max_token_lifetime_secs).
        #[arg(long, default_value_t = 120)]
        lifetime: u64,
    },
}

pub fn token(cli: &Cli, command: &TokenCommand) -> Result<ExitCode> {
    let TokenCommand::Mint {
        agency,
        subject,
        key,
        kid,
        audience,
        lifetime,
    } = command;
    let agency = AgencyId::parse(agency)?;
    let subject = subject
        .clone()
        .unwrap_or_else(|| format!("{agency}-case-system"));
    if subject.trim().is_empty() {
        anyhow::bail!("--subject must name the person or system acting for {agency}");
    }
    let key_path = key.clone().unwrap_or_else(|| keys::dev_key_path(&agency));
    let pem = keys::read_key(&key_path)?;
    let signer = Signer::from_pem(&pem, kid.as_deref()).map_err(|e| anyhow::anyhow!(e))?;
    let audience = match audience {
        Some(a) => a.clone(),
        None => cli.load_config()?.gateway.audience,
    };
    let token = signer
        .mint(agency.as_str(), &subject, &audience, unix_now(), *lifetime)
        .map_err(|e| anyhow::anyhow!(e))?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn agency_client(
    cli: &Cli,
    agency: &str,
    key: Option<&PathBuf>,
) -> Result<AgencyClient> {
    let agency = AgencyId::parse(agency)?;
    let key_path = key.cloned().unwrap_or_else(|| keys::dev_key_path(&agency));
    let pem = keys::read_key(&key_path)?;
    let nats = cli.agency_nats(agency.as_str())?;
    let audience = cli.load_config()?.gateway.audience;
    let signer = liaison_core::tokens::Signer::from_pem(&pem, None).map_err(anyhow::Error::msg)?;
    AgencyClient::connect_with(agency, signer, &audience, &nats)
        .await
        .map_err(Into::into)
}

pub async fn send(cli: &Cli, args: &SendArgs) -> Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let mut envelope: Envelope =
        json::from_json("Envelope", &text).with_context(|| format!("{}", args.file.display()))?;
    let client = agency_client(cli, &args.agency, args.key.as_ref()).await?;
    let author = format!("{}-case-system", args.agency);
    liaison_client::envelope::complete(&mut envelope, client.agency(), &author);
    let verdict = client.send(&envelope).await?;
    println!("envelope {} from {}", envelope.id, args.agency);
    Ok(print_verdict(&verdict))
}

pub(super) fn print_verdict(verdict: &Verdict) -> ExitCode {
    let via = if verdict.policy_ids.is_empty() {
        String::new()
    } else {
        format!(" under {}", verdict.policy_ids.join(", "))
    };
    match Outcome::try_from(verdict.outcome) {
        Ok(Outcome::Accepted) | Ok(Outcome::Duplicate) => {
            let word = if verdict.outcome == Outcome::Accepted as i32 {
                "ACCEPTED"
            } else {
                "DUPLICATE (already accepted; not delivered again)"
            };
            let to = if verdict.recipients.is_empty() {
                "no recipient".to_owned()
            } else {
                verdict.recipients.join(", ")
            };
            println!("verdict  {word}: delivered to {to}{via}");
            ExitCode::SUCCESS
        }
        _ => {
            println!("verdict  REFUSED ({}): {}", verdict.code, verdict.reason);
            ExitCode::FAILURE
        }
    }
}

pub async fn inbox(cli: &Cli, args: &InboxArgs) -> Result<ExitCode> {
    let client = agency_client(cli, &args.agency, args.key.as_ref()).await?;
    let deliveries = client
        .inbox(args.max, Duration::from_secs(args.wait.max(1)))
        .await?;
    for delivery in &deliveries {
        if args.json {
            println!("{}", json::to_json("Delivery", delivery));
        } else {
            print_delivery(delivery);
        }
    }
    if !args.json {
        println!(
            "{} deliveries for {} (acknowledged)",
            deliveries.len(),
            args.agency
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_delivery(delivery: &Delivery) {
    let envelope = delivery.envelope.clone().unwrap_or_default();
    let classification = liaison_proto::v1::Classification::try_from(envelope.classification)
        .map(|c| {
            c.as_str_name()
                .trim_start_matches("CLASSIFICATION_")
                .to_owned()
        })
        .unwrap_or_default();
    println!(
        "── {} {} from {} ({classification}), case {}",
        envelope.kind(),
        envelope.id,
        envelope.sender_agency,
        if envelope.case_id.is_empty() {
            "-"
        } else {
            &envelope.case_id
        },
    );
    println!(
        "   purpose {:?}, legal basis {:?}",
        envelope.purpose, envelope.legal_basis
    );
    println!("   permitted by {}", delivery.policy_ids.join(", "));
    let withheld: Vec<&str> = delivery
        .withheld_labels
        .iter()
        .filter_map(|l| DataLabel::try_from(*l).ok())
        .map(DataLabel::short_name)
        .collect();
    if !withheld.is_empty() {
        println!(
            "   withheld {} (fields removed by policy)",
            withheld.join(", ")
        );
    }
    let body = json::to_json("Envelope", &envelope);
    for key in ["referral", "caseUpdate", "alert"] {
        if let Some(value) = body.get(key) {
            let pretty = serde_json::to_string_pretty(value).unwrap_or_default();
            for line in pretty.lines() {
                println!("   {line}");
            }
        }
    }
}

pub fn keys(command: &KeysCommand) -> Result<ExitCode> {
    match command {
        KeysCommand::Gen {
            agency,
            alg,
            out,
            force,
        } => {
            let agency = AgencyId::parse(agency)?;
            let (pem, entry) = keys::generate(*alg)?;
            std::fs::create_dir_all(out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let path = out.join(format!("{agency}.pem"));
            if path.exists() && !force {
                anyhow::bail!(
                    "{} exists: give --force to replace it, or --out another directory",
                    path.display()
                );
            }
            liaison_core::session::write_private(&path, pem.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!("# private key: {}", path.display());
            println!("[[agency.keys]]");
            println!("{entry}");
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::GenNats { agency, out, force } => {
            let agency = AgencyId::parse(agency)?;
            let (seed, public) = keys::generate_nkey()?;
            std::fs::create_dir_all(out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let path = keys::nkey_path(out, agency.as_str());
            if path.exists() && !force {
                anyhow::bail!(
                    "{} exists: give --force to replace it, or --out another directory",
                    path.display()
                );
            }
            liaison_core::session::write_private(&path, format!("{seed}\n").as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!(
                "# NKey seed (the agency's NATS login; keep it secret): {}",
                path.display()
            );
            println!("nats_keys = [\"{public}\"]");
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::GenKek { id, out } => {
            let line = liaison_runtime::seal::KekFile::generate(id).map_err(anyhow::Error::msg)?;
            let Some(out) = out else {
                println!("{line}");
                return Ok(ExitCode::SUCCESS);
            };
            if out.exists() {
                anyhow::bail!(
                    "{} exists: add the key to it instead (run without --out for the line), or give another --out",
                    out.display()
                );
            }
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let text = format!(
                "# Key-encryption keys (data.kek_file). Keep this file secret, outside NATS.\ncurrent = \"{id}\"\n\n[keys]\n{line}\n"
            );
            liaison_runtime::seal::KekFile::parse(&text).map_err(anyhow::Error::msg)?;
            liaison_core::session::write_private(out, text.as_bytes())
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "key-encryption key {id} written to {} (0600)",
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::GenLink { out } => {
            // As `keys gen --out DIR`: the directory is made if missing.
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            liaison_client::subject::SubjectKey::generate().write_new(out)?;
            println!(
                "subject key written to {} (0600): give it to every agency of the partnership, never to Liaison's services",
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
