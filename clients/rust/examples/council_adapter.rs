//! A council's case-management system adapter (safeguarding team), built on
//! `liaison-client`'s file-drop adapter (`liaison_client::adapter`):
//!
//! - it forwards the council's own case updates, which the case system drops
//!   as JSON envelopes into `DIR/outbox/` (the council sits on the Channel
//!   panel, clause ISA-CHANNEL-01: it may send updates on cases it takes part
//!   in), moving each to `DIR/sent/` or `DIR/refused/` with the verdict or
//!   the reason beside it;
//! - it files what the council receives — referrals from schools
//!   (ISA-EDU-01) and the NHS (ISA-HEALTH-01), case updates, protective
//!   security alerts — into `DIR/inbox/<envelope id>.json`, acknowledging
//!   each once its file is on disk.
//!
//! Against `liaison up` (credentials from `.liaison/session.json`):
//!
//! ```sh
//! mkdir -p /tmp/council/outbox
//! cp clients/rust/examples/data/council-case-update.json /tmp/council/outbox/
//! cargo run -p liaison-client --example council_adapter -- --dir /tmp/council --once
//! ```
//!
//! Elsewhere: `--nats URL --user council --password …` (or `--creds FILE`),
//! `--ca FILE` to require TLS, `--key FILE` for the council's signing key.

#![allow(clippy::print_stdout)]

use anyhow::{Context as _, Result};
use clap::Parser;
use liaison_client::adapter::{Adapter, Dirs, Outcome};
use liaison_client::{
    AgencyClient, AgencyId, Credentials, DEFAULT_AUDIENCE, NatsAuth, NatsOptions, signer_from_file,
};
use liaison_core::session::{self, Session};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(about = "Connects a council's case system to Liaison through files")]
struct Args {
    /// Root of the case system's exchange directories (outbox/, sent/, refused/, inbox/).
    #[arg(long)]
    dir: PathBuf,
    /// The agency this adapter speaks for.
    #[arg(long, default_value = "council")]
    agency: String,
    /// The system's id: the envelopes' author and the tokens' subject.
    #[arg(long, default_value = "council-case-system")]
    author: String,
    /// The agency's signing key [default: deploy/agencies/dev-keys/AGENCY.pem].
    #[arg(long)]
    key: Option<PathBuf>,
    /// NATS URL [default: the session's].
    #[arg(long, env = "LIAISON_NATS_URL")]
    nats: Option<String>,
    #[arg(long, env = "LIAISON_NATS_USER")]
    user: Option<String>,
    #[arg(long, env = "LIAISON_NATS_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// A NATS .creds file instead of a user and password.
    #[arg(long, conflicts_with = "password")]
    creds: Option<PathBuf>,
    /// Require TLS, trusting this CA (PEM) for the server's certificate.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// The session `liaison up` wrote, for what is not given above.
    #[arg(long)]
    session: Option<PathBuf>,
    /// One pass (forward the outbox, file the inbox), then exit.
    #[arg(long)]
    once: bool,
    /// Seconds between passes, and how long each pass waits for deliveries.
    #[arg(long, default_value_t = 2)]
    poll: u64,
}

fn nats_options(args: &Args) -> Result<NatsOptions> {
    let path = args.session.clone().unwrap_or_else(session::default_path);
    let session = || Session::load(&path).context("no --nats/--password given and no session");
    let url = match &args.nats {
        Some(url) => url.clone(),
        None => session()?.nats_url,
    };
    let auth = match (&args.creds, &args.password) {
        (Some(creds), _) => NatsAuth::CredsFile(creds.clone()),
        (None, Some(password)) => NatsAuth::UserPassword(Credentials {
            user: args.user.clone().unwrap_or_else(|| args.agency.clone()),
            password: password.clone().into(),
        }),
        (None, None) => NatsAuth::UserPassword(session()?.credentials(&args.agency, &path)?),
    };
    let mut options = NatsOptions::with_auth(url, auth);
    if let Some(ca) = &args.ca {
        options = options.require_tls(Some(ca.clone()));
    }
    Ok(options)
}

fn report(adapter_pass: &[liaison_client::adapter::Forwarded]) {
    for f in adapter_pass {
        let id = f.envelope_id.as_deref().unwrap_or("-");
        match &f.outcome {
            Outcome::Sent(r) if r.duplicate => {
                println!(
                    "sent      {} ({id}): already accepted, not delivered again",
                    f.file
                );
            }
            Outcome::Sent(r) => println!(
                "sent      {} ({id}): delivered to {}",
                f.file,
                r.recipients.join(", ")
            ),
            Outcome::Refused { code, reason } => {
                println!("refused   {} ({id}): {code}: {reason}", f.file);
            }
            Outcome::Deferred(why) => println!("deferred  {} ({id}): {why}", f.file),
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let agency = AgencyId::parse(&args.agency)?;
    let key = args
        .key
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("deploy/agencies/dev-keys/{agency}.pem")));
    let signer = signer_from_file(&key, None)?;
    let client =
        AgencyClient::connect_with(agency, signer, DEFAULT_AUDIENCE, &nats_options(&args)?).await?;
    let adapter = Adapter::new(&client, Dirs::under(&args.dir), &args.author)?;
    let poll = Duration::from_secs(args.poll.max(1));
    loop {
        report(&adapter.forward_outbox().await?);
        for filed in adapter.file_inbox(100, poll).await? {
            let note = if filed.already_filed {
                " (already filed)"
            } else {
                ""
            };
            println!("received  {} from {}{note}", filed.envelope_id, filed.from);
        }
        if args.once {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = tokio::time::sleep(poll) => {}
        }
    }
}
