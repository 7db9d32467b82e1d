//! `liaison witness …`: run a witness of the ledger (C2SP tlog-witness) on a
//! machine of one's own, as an oversight body or an agency would: `init`
//! makes its Ed25519 key and prints its verifier key for the partnership's
//! configuration; `serve` answers `POST /add-checkpoint`, cosigning only
//! checkpoints consistent with the last one it cosigned
//! (docs/decisions/0023-witnesses.md).

use super::Cli;
use anyhow::{Context as _, Result, anyhow, bail};
use clap::{Args, Subcommand};
use liaison_audit::checkpoint::NoteVerifier;
use liaison_audit::witness::{Cosigner, Witness};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Subcommand)]
pub enum WitnessCommand {
    /// Make the witness's Ed25519 key: writes DIR/witness.pem (0600) and
    /// prints its verifier key (`NAME+ID+KEY`), for `audit.witnesses`.
    Init {
        /// The witness's name, a schema-less URL, e.g. `oversight.example/witness`.
        #[arg(long)]
        name: String,
        /// Where to write the key (must not hold one already).
        #[arg(long)]
        out: PathBuf,
    },
    /// Serve `POST /add-checkpoint` until Ctrl-C.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The witness's name, as at `init`.
    #[arg(long)]
    name: String,
    /// Its private key (PKCS#8 PEM).
    #[arg(long)]
    key: PathBuf,
    /// A log it witnesses, by the log's verifier key (`ORIGIN+ID+KEY`);
    /// repeatable [default: the configuration's audit.verifier_key].
    #[arg(long = "log")]
    logs: Vec<String>,
    /// Where it keeps the last checkpoint it cosigned per log, and the
    /// evidence of any fork.
    #[arg(long)]
    state: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7380")]
    listen: String,
}

pub async fn run(cli: &Cli, command: &WitnessCommand) -> Result<ExitCode> {
    match command {
        WitnessCommand::Init { name, out } => {
            let path = out.join("witness.pem");
            if path.exists() {
                bail!("{} exists: a witness keeps its key", path.display());
            }
            let (pem, _) = liaison_system::keys::generate(liaison_core::tokens::KeyAlg::EdDSA)?;
            let cosigner = Cosigner::from_pem(name, &pem).map_err(|e| anyhow!("{e}"))?;
            std::fs::create_dir_all(out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            liaison_core::session::write_private(&path, pem.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!(
                "# witness key: {} (keep it on this machine)",
                path.display()
            );
            println!("{}", cosigner.verifier().vkey());
            Ok(ExitCode::SUCCESS)
        }
        WitnessCommand::Serve(args) => serve(cli, args).await,
    }
}

async fn serve(cli: &Cli, args: &ServeArgs) -> Result<ExitCode> {
    let pem = std::fs::read_to_string(&args.key)
        .with_context(|| format!("cannot read --key {}", args.key.display()))?;
    let cosigner = Cosigner::from_pem(&args.name, &pem).map_err(|e| anyhow!("--key: {e}"))?;
    let logs = if args.logs.is_empty() {
        vec![cli.load_config()?.audit.verifier_key]
    } else {
        args.logs.clone()
    };
    let logs = logs
        .iter()
        .map(|l| NoteVerifier::parse(l).map_err(|e| anyhow!("--log: {e}")))
        .collect::<Result<Vec<_>>>()?;
    let witness = Witness::open(cosigner, &logs, &args.state).map_err(|e| anyhow!(e))?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    println!(
        "Witness {} on http://{}/add-checkpoint for {}",
        witness.cosigner().verifier().vkey(),
        listener.local_addr()?,
        logs.iter()
            .map(NoteVerifier::name)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    liaison_system::witness::serve(Arc::new(witness), listener, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}
