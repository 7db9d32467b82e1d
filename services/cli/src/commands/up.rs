//! `liaison up`: the whole system in one process until Ctrl-C or SIGTERM,
//! with the gateway's HTTPS door on a development certificate made at start
//! (unless the configuration names its own, or `--no-https`), every
//! service's operations listener and the operator console on loopback.
//! Spans are exported only when asked (`--otlp-endpoint`,
//! `telemetry.otlp_endpoint`).

use super::Cli;
use anyhow::{Context as _, Result};
use clap::Args;
use liaison_core::session;
use liaison_runtime::config::Config;
use liaison_system::devtls;
use liaison_system::system::{System, UpOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct UpArgs {
    /// NATS client port (0 picks a free one).
    #[arg(long, default_value_t = 4222)]
    port: u16,
    /// Keep JetStream data in this directory (default: a temporary one, removed on exit).
    #[arg(long)]
    store: Option<PathBuf>,
    /// Address of the gateway's HTTPS door, on a development certificate made
    /// now (ignored when the configuration sets https.listen).
    #[arg(long, default_value = "127.0.0.1:8443")]
    https_listen: String,
    /// Do not open the HTTPS door.
    #[arg(long)]
    no_https: bool,
    /// Plain-HTTP /metrics, /healthz and /readyz of the gateway (no
    /// authentication: keep it on loopback; empty: off).
    #[arg(long, default_value = "127.0.0.1:9464")]
    gateway_telemetry: String,
    /// Plain-HTTP /metrics, /healthz and /readyz of the audit service.
    #[arg(long, default_value = "127.0.0.1:9465")]
    audit_telemetry: String,
    /// Plain-HTTP /metrics, /healthz and /readyz of the cases service.
    #[arg(long, default_value = "127.0.0.1:9466")]
    cases_telemetry: String,
    /// Plain-HTTP /metrics, /healthz and /readyz of the linkage service.
    #[arg(long, default_value = "127.0.0.1:9467")]
    linkage_telemetry: String,
    /// Plain-HTTP /metrics, /healthz and /readyz of the alerts service.
    #[arg(long, default_value = "127.0.0.1:9468")]
    alerts_telemetry: String,
    /// The operator console, plain HTTP (GET /console; no authentication:
    /// keep it on loopback; empty: off). It needs the gateway's listener.
    #[arg(long, default_value = "127.0.0.1:9460")]
    console: String,
}

/// Checks that an operations listener's address is free, naming the flag if not.
fn telemetry_free(addr: &str, flag: &str) -> Result<Option<String>> {
    if addr.trim().is_empty() {
        return Ok(None);
    }
    if let Err(e) = std::net::TcpListener::bind(addr) {
        anyhow::bail!(
            "cannot listen on {addr} ({e}): stop what uses it, or choose another address with {flag} (127.0.0.1:0 picks a free port; empty: off)"
        );
    }
    Ok(Some(addr.to_owned()))
}

/// How the HTTPS door was set up for this session.
enum Door {
    Off,
    /// Development certificates in this directory, removed on exit.
    Dev {
        dir: PathBuf,
        ca: PathBuf,
    },
    /// The configuration's own certificate.
    Configured,
}

/// Sets up `config.https` for this session.
fn https(config: &mut Config, args: &UpArgs, session_dir: &Path) -> Result<Door> {
    if args.no_https {
        config.https.listen.clear();
        return Ok(Door::Off);
    }
    if config.https.enabled() {
        return Ok(Door::Configured);
    }
    // Said plainly here, before anything starts, rather than as a gateway error.
    if let Err(e) = std::net::TcpListener::bind(&args.https_listen) {
        anyhow::bail!(
            "the HTTPS door cannot listen on {} ({e}): stop what uses it, or choose another address with --https-listen (127.0.0.1:0 picks a free port), or --no-https",
            args.https_listen
        );
    }
    let dir = session_dir.join("tls");
    let files = devtls::write_server_files(&dir).context("development certificates")?;
    config.https.listen = args.https_listen.clone();
    config.https.cert = files.cert;
    config.https.key = files.key;
    Ok(Door::Dev { dir, ca: files.ca })
}

pub async fn run(cli: &Cli, args: &UpArgs) -> Result<ExitCode> {
    let mut config = cli.load_config()?;
    let path = cli.session.clone().unwrap_or_else(session::default_path);
    let session_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let door = https(&mut config, args, &session_dir)?;
    let gateway_telemetry = telemetry_free(&args.gateway_telemetry, "--gateway-telemetry")?;
    let audit_telemetry = telemetry_free(&args.audit_telemetry, "--audit-telemetry")?;
    let cases_telemetry = telemetry_free(&args.cases_telemetry, "--cases-telemetry")?;
    let linkage_telemetry = telemetry_free(&args.linkage_telemetry, "--linkage-telemetry")?;
    let alerts_telemetry = telemetry_free(&args.alerts_telemetry, "--alerts-telemetry")?;
    let console = telemetry_free(&args.console, "--console")?;
    println!("Starting Liaison: nats-server, gateway, audit, cases, linkage, alerts ...");
    let system = System::start(
        config,
        UpOptions {
            port: (args.port != 0).then_some(args.port),
            store_dir: args.store.clone(),
            sync_interval: None,
            gateway_telemetry,
            audit_telemetry,
            cases_telemetry,
            linkage_telemetry,
            alerts_telemetry,
            console,
            max_file_store: None,
            nats_tls: None,
            // The operator reads no message agencies shared (ADR 0021).
            inspector: false,
            // Envelopes and copies are stored sealed (ADR 0022).
            plaintext_store: false,
        },
    )
    .await?;
    system.session.save(&path)?;
    let agencies: Vec<String> = system
        .registry
        .ids()
        .iter()
        .map(ToString::to_string)
        .collect();
    println!("  NATS      {}", system.url());
    println!(
        "  session   {} (NATS credentials per service and operator, mode 0600)",
        path.display()
    );
    println!(
        "  agencies  {} (live registry; NATS logins by NKey, deploy/agencies/dev-keys/AGENCY.nk)",
        listed(&agencies)
    );
    println!("  streams   EVENTS, DELIVERY, DECISIONS, LEDGER");
    let url = system.https_addr().map(|a| format!("https://{a}"));
    match (&door, &url) {
        (Door::Dev { ca, .. }, Some(url)) => {
            println!(
                "  HTTPS     {url}  (development CA {}, made now)",
                ca.display()
            );
        }
        (Door::Configured, Some(url)) => {
            println!(
                "  HTTPS     {url}  (certificate {})",
                system.config.https.cert.display()
            );
        }
        _ => println!("  HTTPS     off"),
    }
    for name in ["gateway", "audit", "cases", "linkage", "alerts"] {
        match system.telemetry_addr(name) {
            Some(a) => println!("  metrics   http://{a}/metrics  ({name}; /healthz, /readyz)"),
            None => println!("  metrics   off ({name})"),
        }
    }
    match system.console_addr() {
        Some(a) => println!("  console   http://{a}/console  (flows, refusals, lag, checkpoints)"),
        None => println!("  console   off (--console ADDR opens it)"),
    }
    match cli.otlp_endpoint().as_str() {
        "" => println!("  traces    off (--otlp-endpoint URL exports spans over OTLP/HTTP)"),
        endpoint => println!("  traces    {endpoint}  (OTLP/HTTP)"),
    }
    println!("Try, in another terminal:");
    let dev = ["school-a", "police"]
        .iter()
        .all(|a| agencies.iter().any(|id| id == a));
    if dev {
        println!("  liaison send --agency school-a deploy/examples/referral.json");
        println!("  liaison inbox --agency police");
    } else {
        println!(
            "  liaison send --agency ID --key KEY.pem FILE   (as one of the registry's agencies)"
        );
    }
    println!("  liaison audit verify --purpose log-review");
    println!("  liaison alerts");
    println!("  liaison status");
    if let (Door::Dev { ca, .. }, Some(url)) = (&door, &url) {
        println!("  curl --cacert {} {url}/v1/openapi.json", ca.display());
    }
    println!("Liaison is ready. Press Ctrl-C to stop.");
    stop_signal().await?;
    println!("Stopping ...");
    system.shutdown().await?;
    let _ = std::fs::remove_file(&path);
    if let Door::Dev { dir, .. } = &door {
        let _ = std::fs::remove_dir_all(dir);
    }
    println!("Stopped.");
    Ok(ExitCode::SUCCESS)
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM.
async fn stop_signal() -> Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    Ok(())
}

/// The agencies registered, in full for a partnership, in brief for a nation.
fn listed(agencies: &[String]) -> String {
    const IN_FULL: usize = 24;
    match agencies {
        [first, .., last] if agencies.len() > IN_FULL => format!(
            "{} registered ({first}, {} … {last}; `liaison status` lists them)",
            agencies.len(),
            agencies[1]
        ),
        _ => agencies.join(", "),
    }
}
