//! Command-line parsing and dispatch. Each command's work is in `commands/`.

mod agencies;
mod agency;
mod alerts;
mod audit;
mod bench;
mod cases;
mod demo;
mod ledger_restore;
mod link;
mod nats_config;
mod operator;
mod policy;
mod registry;
mod serve;
mod status;
mod subject;
mod up;
mod witness;

use anyhow::Result;
use clap::{Parser, Subcommand};
use liaison_core::Credentials;
use liaison_core::connect::TlsOptions;
use liaison_core::session::{self, Session};
use liaison_runtime::config::Config;
use liaison_runtime::telemetry::Telemetry;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Liaison: the information-sharing broker for counter-terrorism and
/// safeguarding partnerships.
#[derive(Debug, Parser)]
#[command(name = "liaison", version, about)]
pub struct Cli {
    /// Configuration file (default: deploy/config/liaison.toml when present).
    #[arg(long, global = true, env = "LIAISON_CONFIG")]
    config: Option<PathBuf>,
    /// NATS server URL (default: the one `liaison up` recorded in its session).
    #[arg(long, global = true, env = "LIAISON_NATS_URL")]
    nats: Option<String>,
    /// NATS user (default: from the session, named after the agency or role).
    #[arg(long, global = true, env = "LIAISON_NATS_USER")]
    user: Option<String>,
    /// NATS password for --user.
    #[arg(
        long,
        global = true,
        env = "LIAISON_NATS_PASSWORD",
        hide_env_values = true
    )]
    password: Option<String>,
    /// An agency's NKey seed file, its NATS login for the agency commands
    /// [default: deploy/agencies/dev-keys/AGENCY.nk].
    #[arg(long, global = true, env = "LIAISON_NATS_NKEY", value_name = "FILE")]
    nkey: Option<PathBuf>,
    /// Session file written by `liaison up` [default: .liaison/session.json].
    #[arg(long, global = true)]
    session: Option<PathBuf>,
    /// Log what the services do (to stderr).
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// Export spans over OTLP/HTTP to this collector, e.g.
    /// http://127.0.0.1:4318 [default: telemetry.otlp_endpoint; empty: off].
    #[arg(long, global = true, value_name = "URL")]
    otlp_endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start nats-server and all services in one process; Ctrl-C stops them.
    Up(up::UpArgs),
    /// Start a system, replay a day of partnership traffic through it, report, stop.
    Demo(demo::DemoArgs),
    /// Send an envelope (a JSON file) as an agency and print the gateway's verdict.
    Send(agency::SendArgs),
    /// Print and acknowledge what was delivered to an agency.
    Inbox(agency::InboxArgs),
    /// The cases an agency participates in (`list`, `show ID`), asked through the gateway.
    Cases(cases::CasesArgs),
    /// Auditor commands.
    Audit(audit::AuditArgs),
    /// Alerts business partners have not all acknowledged (operator); `alerts
    /// ack ALERT_ID --agency A` acknowledges one as that agency.
    Alerts(alerts::AlertsArgs),
    /// Signing keys of agencies and auditors.
    #[command(subcommand)]
    Keys(agency::KeysCommand),
    /// Pseudonymous subject tokens (`link token`), computed locally with the
    /// partnership's subject key.
    #[command(subcommand)]
    Link(link::LinkCommand),
    /// Check, explain and test the access policy (ISA clauses as code).
    Policy(policy::PolicyArgs),
    /// The people the data is about: `subject report --token T` lists every
    /// share about them from the ledger (a recorded consultation).
    Subject(subject::SubjectArgs),
    /// Membership, live: `agencies suspend ID` cuts an agency off at once,
    /// `agencies resume ID` lets it back (a named operator's signed change,
    /// recorded in the ledger).
    #[command(subcommand)]
    Agencies(agencies::AgenciesCommand),
    /// Agency registries: `registry generate` writes a national one.
    #[command(subcommand)]
    Registry(registry::RegistryCommand),
    /// Tokens signed with an agency's or auditor's key (`token mint` prints
    /// one, e.g. for `Authorization: Bearer` at the HTTPS door).
    #[command(subcommand)]
    Token(agency::TokenCommand),
    /// Print a nats-server configuration with a user per agency and service;
    /// `--cluster-dir` writes one per node of a cluster, `--leaf` an agency
    /// site's leaf node.
    NatsConfig(nats_config::NatsConfigArgs),
    /// Create or update the streams and consumers on a running nats-server.
    Provision,
    /// Server, streams, consumers, ledger and services at a glance; exit 1 if
    /// something is wrong.
    Status(status::StatusArgs),
    /// Measure the pipeline, latency, ledger, linkage and each service's
    /// memory against raw NATS in one run on its own nats-server.
    Bench(bench::BenchArgs),
    /// Run one service as its own process (as the container image does).
    #[command(subcommand)]
    Serve(serve::ServeCommand),
    /// A witness of the ledger (C2SP tlog-witness) that an oversight body
    /// runs on its own machine: `init` makes its key, `serve` cosigns.
    #[command(subcommand)]
    Witness(witness::WitnessCommand),
}

/// Where to connect and as whom, resolved from flags, environment and session.
pub struct Target {
    pub url: String,
    pub credentials: Credentials,
    /// TLS to NATS, from the configuration's `[nats]` `tls_*` keys.
    pub tls: TlsOptions,
}

impl Cli {
    /// Where spans are exported: `--otlp-endpoint`, else the configuration's
    /// `telemetry.otlp_endpoint` (empty: nowhere).
    fn otlp_endpoint(&self) -> String {
        match &self.otlp_endpoint {
            Some(endpoint) => endpoint.trim().to_owned(),
            // A configuration that does not load is reported by the command.
            None => self
                .load_config()
                .map(|c| c.telemetry.otlp_endpoint.trim().to_owned())
                .unwrap_or_default(),
        }
    }

    /// Installs logging (`--verbose`: info, else warnings) and, when an OTLP
    /// endpoint is configured, span export as `service.name` `liaison` (or
    /// `telemetry.service_name`). Keep the result until the command ends: it
    /// sends the spans still waiting when dropped.
    pub fn telemetry(&self) -> Result<Telemetry> {
        let mut wanted = self.load_config().map(|c| c.telemetry).unwrap_or_default();
        wanted.otlp_endpoint = self.otlp_endpoint();
        let filter = if self.verbose { "info" } else { "warn" };
        Ok(liaison_runtime::telemetry::init_with(
            filter, &wanted, "liaison",
        )?)
    }

    /// Whether the command runs a service, which sets up its own telemetry.
    pub fn runs_service(&self) -> bool {
        matches!(self.command, Command::Serve(_))
    }

    /// The configuration file: `--config`, else deploy/config/liaison.toml
    /// when present (`None`: defaults and `LIAISON_*` variables only).
    fn config_file(&self) -> Option<PathBuf> {
        let default = Path::new("deploy/config/liaison.toml");
        self.config
            .clone()
            .or_else(|| default.is_file().then(|| default.to_path_buf()))
    }

    fn load_config(&self) -> Result<Config> {
        Ok(Config::load(self.config_file().as_deref())?)
    }

    /// The NATS URL and credentials for `user` (flags win over the session).
    /// Where and how `agency` logs in to NATS: its NKey (`--nkey`, or the
    /// development one), or `--user` and `--password` where both are given
    /// (a site's leaf node, which logs its systems in locally).
    fn agency_nats(&self, agency: &str) -> Result<liaison_client::NatsOptions> {
        let url = self.nats_url()?;
        let auth = match (&self.user, &self.password) {
            (Some(user), Some(password)) => liaison_client::NatsAuth::UserPassword(Credentials {
                user: user.clone(),
                password: password.clone().into(),
            }),
            _ => liaison_client::NatsAuth::NKeySeedFile(self.nkey.clone().unwrap_or_else(|| {
                liaison_system::keys::nkey_path(
                    std::path::Path::new(liaison_system::keys::DEV_KEYS),
                    agency,
                )
            })),
        };
        let nats = self.load_config()?.nats;
        nats.check_tls_files().map_err(anyhow::Error::msg)?;
        let mut options = liaison_client::NatsOptions::with_auth(url, auth);
        options.tls = nats.tls();
        Ok(options)
    }

    /// The NATS URL: `--nats`, else the session's, else the configuration's.
    fn nats_url(&self) -> Result<String> {
        Ok(match &self.nats {
            Some(url) => url.clone(),
            None => {
                let path = self.session.clone().unwrap_or_else(session::default_path);
                match Session::load(&path) {
                    Ok(s) => s.nats_url,
                    Err(_) => self.load_config()?.nats.url,
                }
            }
        })
    }

    /// Connects as the auditor `auditor`, with their own NKey (`--nkey`, or
    /// the development one in deploy/audit/dev-auditor-keys/), through the
    /// gateway's auth callout (ADR 0021).
    async fn connect_auditor(&self, auditor: &str) -> Result<async_nats::Client> {
        let id = liaison_core::AgencyId::parse(auditor)
            .map_err(|e| anyhow::anyhow!("--auditor {auditor:?}: {e}"))?;
        let seed = self.nkey.clone().unwrap_or_else(|| {
            liaison_system::keys::nkey_path(
                std::path::Path::new("deploy/audit/dev-auditor-keys"),
                auditor,
            )
        });
        let nats = self.load_config()?.nats;
        nats.check_tls_files().map_err(anyhow::Error::msg)?;
        Ok(liaison_core::connect::connect_nkey(
            &self.nats_url()?,
            &seed,
            &liaison_runtime::auditors::nats_name(&id),
            &nats.tls(),
        )
        .await?)
    }

    fn target(&self, user: &str) -> Result<Target> {
        let path = self.session.clone().unwrap_or_else(session::default_path);
        let session = match (&self.user, &self.password, &self.nats) {
            (Some(_), Some(_), Some(_)) => None,
            _ => Some(Session::load(&path)?),
        };
        let url = match (&self.nats, &session) {
            (Some(url), _) => url.clone(),
            (None, Some(s)) => s.nats_url.clone(),
            (None, None) => self.load_config()?.nats.url,
        };
        let credentials = match (&self.user, &self.password, &session) {
            (Some(user), Some(password), _) => Credentials {
                user: user.clone(),
                password: password.clone().into(),
            },
            (_, _, Some(s)) => s.credentials(self.user.as_deref().unwrap_or(user), &path)?,
            _ => anyhow::bail!(
                "give both --user and --password, or start a session with `liaison up`"
            ),
        };
        let nats = self.load_config()?.nats;
        nats.check_tls_files().map_err(anyhow::Error::msg)?;
        Ok(Target {
            url,
            credentials,
            tls: nats.tls(),
        })
    }
}

/// Runs the parsed command, returning the process exit code.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Up(args) => up::run(&cli, args).await,
        Command::Demo(args) => demo::run(&cli, args).await,
        Command::Send(args) => agency::send(&cli, args).await,
        Command::Inbox(args) => agency::inbox(&cli, args).await,
        Command::Cases(args) => cases::run(&cli, args).await,
        Command::Audit(args) => audit::run(&cli, args).await,
        Command::Subject(args) => subject::run(&cli, args).await,
        Command::Alerts(args) => alerts::run(&cli, args).await,
        Command::Keys(command) => agency::keys(command),
        Command::Token(command) => agency::token(&cli, command),
        Command::Link(command) => link::run(command),
        Command::Policy(args) => policy::run(&cli, args),
        Command::Registry(command) => registry::run(command),
        Command::Agencies(command) => agencies::run(&cli, command).await,
        Command::NatsConfig(args) => nats_config::run(&cli, args),
        Command::Provision => operator::provision_streams(&cli).await,
        Command::Status(args) => status::run(&cli, args).await,
        Command::Bench(args) => bench::run(&cli, args).await,
        Command::Serve(service) => serve::run(&cli, *service).await,
        Command::Witness(command) => witness::run(&cli, command).await,
    }
}
