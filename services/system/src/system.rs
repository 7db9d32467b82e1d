//! A whole Liaison system in one process: a child nats-server with one user
//! per service and per agency, the streams provisioned, and the gateway,
//! audit, cases, linkage and alerts services running in-process with their
//! own users, each with its operations listener when asked, and the
//! operator console ([`crate::console`]) when asked. Behind
//! `liaison up`, `liaison demo` and the end-to-end tests.

mod alerts;
mod cases;
mod console;
mod folds;
mod linkage;
mod running;

use running::Running;

use anyhow::{Result, anyhow};
use async_nats::jetstream::consumer::PullConsumer;
use liaison_audit::AuditService;
use liaison_core::Credentials;
use liaison_core::connect::connect;
use liaison_core::session::Session;
use liaison_core::subjects;
use liaison_gateway::Gateway;
use liaison_runtime::config::Config;
use liaison_runtime::nats_conf::ServerTls;
use liaison_runtime::nats_server::{NatsServer, ServerOptions};
use liaison_runtime::provision::provision;
use liaison_runtime::registry::Registry;
use liaison_runtime::users;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::error;

/// Where and how to run the child nats-server.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Adds the [`users::INSPECTOR`] NATS user, which may read every
    /// stream: for tests and benchmarks that look inside a system of their
    /// own. Never in a deployment (`liaison up` and `nats-config` leave it
    /// out): there the operator reads no message agencies shared.
    pub inspector: bool,
    /// Client port; `None` picks a free one.
    pub port: Option<u16>,
    /// JetStream store; `None` uses a temporary one.
    pub store_dir: Option<PathBuf>,
    /// JetStream `sync_interval`, e.g. "always" (default: `nats.sync_interval`).
    pub sync_interval: Option<String>,
    /// The gateway's operations listener (`/metrics`, `/healthz`, `/readyz`),
    /// e.g. `127.0.0.1:9464`; `None`: off. In one process the services share
    /// a configuration, so `[telemetry] listen` (for the separate binaries)
    /// is not used here.
    pub gateway_telemetry: Option<String>,
    /// The audit service's operations listener, e.g. `127.0.0.1:9465`.
    pub audit_telemetry: Option<String>,
    /// The cases service's operations listener, e.g. `127.0.0.1:9466`.
    pub cases_telemetry: Option<String>,
    /// The linkage service's operations listener, e.g. `127.0.0.1:9467`.
    pub linkage_telemetry: Option<String>,
    /// The alerts service's operations listener, e.g. `127.0.0.1:9468`.
    pub alerts_telemetry: Option<String>,
    /// The operator console (`/console`), e.g. `127.0.0.1:9460`; `None`: off.
    /// It draws the flows from the gateway's `/metrics`, so wants
    /// `gateway_telemetry` too.
    pub console: Option<String>,
    /// JetStream `max_file_store` in bytes, as on a small disk (`None`:
    /// nats-server's default). Set, it can be changed while running
    /// ([`NatsServer::set_max_file_store`], [`NatsServer::reload`]).
    pub max_file_store: Option<u64>,
    /// The child nats-server serves TLS only, with this certificate (and,
    /// with `verify`, asks every client for one): the services then connect
    /// as `config.nats` says (`tls_required`, `tls_ca`, `tls_cert`,
    /// `tls_key`). `None`: plain, the development system.
    pub nats_tls: Option<ServerTls>,
    /// The gateway stores envelopes and copies unsealed: only for
    /// `liaison bench`, to measure what sealing costs (ADR 0022). Never in a
    /// deployment; no configuration sets it.
    pub plaintext_store: bool,
}

/// A running system; [`System::shutdown`] stops it cleanly, dropping it kills the server.
pub struct System {
    pub config: Config,
    pub registry: Registry,
    pub session: Session,
    /// The child nats-server (`None`: a server or cluster run elsewhere, [`System::start_on`]).
    server: Option<NatsServer>,
    gateway: Option<Running>,
    audit: Option<Running>,
    cases: Option<Running>,
    linkage: Option<Running>,
    alerts: Option<Running>,
    https_addr: Option<SocketAddr>,
    telemetry: UpTelemetry,
    console: Option<console::RunningConsole>,
    plaintext_store: bool,
}

/// Where each service's operations listener is asked to listen (by service
/// name: `gateway`, `audit`, `cases`, `linkage`, `alerts`), and where it does.
#[derive(Debug, Default)]
struct UpTelemetry {
    listen: BTreeMap<&'static str, String>,
    bound: BTreeMap<&'static str, SocketAddr>,
}

impl UpTelemetry {
    /// The configuration for `service`: its listener, and no other's.
    fn config_for(&self, config: &Config, service: &'static str) -> Config {
        let mut config = config.clone();
        // In one process the services share a configuration: `[telemetry]
        // listen` (for the separate binaries) is chosen here per service.
        config.telemetry.listen = self.listen.get(service).cloned().unwrap_or_default();
        config
    }

    fn bound(&mut self, service: &'static str, addr: Option<SocketAddr>) {
        match addr {
            Some(addr) => self.bound.insert(service, addr),
            None => self.bound.remove(service),
        };
    }
}

impl System {
    /// Starts nats-server, provisions streams and starts gateway and audit.
    pub async fn start(config: Config, options: UpOptions) -> Result<Self> {
        config.nats.check_tls_files().map_err(anyhow::Error::msg)?;
        let registry = Registry::load(&config.paths.registry)?;
        let mut plan = users::plan();
        if options.inspector {
            plan.push(users::inspector());
        }
        let server = NatsServer::start(&ServerOptions {
            port: options.port,
            store_dir: options.store_dir.clone(),
            sync_interval: options
                .sync_interval
                .clone()
                .or_else(|| Some(config.nats.sync_interval.clone()).filter(|s| !s.is_empty())),
            max_file_store: options.max_file_store,
            users: plan.clone(),
            tls: options.nats_tls.clone(),
        })?;
        let url = server.url();
        let mut system = Self::boot(config, registry, Some(server), url, &plan, &options);
        system.provision_and_start(&options).await?;
        Ok(system)
    }

    /// Starts the services against NATS run elsewhere (e.g. a cluster: `url`
    /// may list several servers, comma-separated, and the clients fail over
    /// between them) whose users are `plan`, after provisioning the streams
    /// with `config.streams.replicas` replicas.
    pub async fn start_on(
        config: Config,
        url: &str,
        plan: &[users::NatsUser],
        options: UpOptions,
    ) -> Result<Self> {
        config.nats.check_tls_files().map_err(anyhow::Error::msg)?;
        let registry = Registry::load(&config.paths.registry)?;
        let mut system = Self::boot(config, registry, None, url.to_owned(), plan, &options);
        system.provision_and_start(&options).await?;
        Ok(system)
    }

    fn boot(
        config: Config,
        registry: Registry,
        server: Option<NatsServer>,
        nats_url: String,
        plan: &[users::NatsUser],
        options: &UpOptions,
    ) -> Self {
        let session = Session {
            nats_url,
            users: plan
                .iter()
                .map(|u| (u.credentials.user.clone(), u.credentials.password.clone()))
                .collect(),
            telemetry: Default::default(),
        };
        Self {
            config,
            registry,
            session,
            server,
            gateway: None,
            audit: None,
            cases: None,
            linkage: None,
            alerts: None,
            https_addr: None,
            telemetry: UpTelemetry {
                listen: [
                    ("gateway", &options.gateway_telemetry),
                    ("audit", &options.audit_telemetry),
                    ("cases", &options.cases_telemetry),
                    ("linkage", &options.linkage_telemetry),
                    ("alerts", &options.alerts_telemetry),
                ]
                .into_iter()
                .filter_map(|(service, listen)| listen.clone().map(|l| (service, l)))
                .collect(),
                bound: BTreeMap::new(),
            },
            console: None,
            plaintext_store: options.plaintext_store,
        }
    }

    /// Provisions the streams as the operator and starts every service.
    async fn provision_and_start(&mut self, options: &UpOptions) -> Result<()> {
        let system = self;
        let operator = async_nats::jetstream::new(system.connect_as(users::OPERATOR).await?);
        provision(&operator, &system.config.streams, &system.registry).await?;
        system.start_audit().await?;
        system.start_gateway().await?;
        system.start_cases().await?;
        system.start_linkage().await?;
        system.start_alerts().await?;
        if let Some(listen) = &options.console {
            system.start_console(listen).await?;
        }
        for (service, addr) in &system.telemetry.bound {
            system
                .session
                .telemetry
                .insert((*service).to_owned(), addr.to_string());
        }
        if let Some(addr) = system.console_addr() {
            system
                .session
                .telemetry
                .insert("console".to_owned(), addr.to_string());
        }
        Ok(())
    }

    /// Where clients connect (several URLs, comma-separated, on a cluster).
    pub fn url(&self) -> String {
        self.session.nats_url.clone()
    }

    pub fn credentials(&self, user: &str) -> Result<Credentials> {
        Ok(self
            .session
            .credentials(user, &PathBuf::from("<in-process>"))?)
    }

    /// Opens what EVENTS and DELIVERY hold, as a test or benchmark looking
    /// inside its own system (needs [`UpOptions::inspector`]).
    pub async fn keyring(&self) -> Result<liaison_runtime::seal::Keyring> {
        let js = async_nats::jetstream::new(self.connect_as(users::INSPECTOR).await?);
        let sealing = if self.plaintext_store {
            liaison_runtime::seal::Sealing::PlainForBenchmarks
        } else {
            liaison_runtime::seal::load_kek(&self.config.data).map_err(anyhow::Error::msg)?
        };
        Ok(liaison_runtime::seal::Keyring::open_store(&js, sealing).await?)
    }

    /// Connects as one of the system's NATS users.
    pub async fn connect_as(&self, user: &str) -> Result<async_nats::Client> {
        Ok(connect(
            &self.url(),
            &self.credentials(user)?,
            &self.config.nats.tls(),
            user,
        )
        .await?)
    }

    /// Runs a service on its own runtime as NATS user `user`: `start` connects
    /// it (errors are returned here), then `run` serves until stopped.
    async fn service<S, E1, E2, Start, Started, Run, Ran>(
        &self,
        name: &'static str,
        user: &str,
        start: Start,
        run: Run,
    ) -> Result<Running>
    where
        Start: FnOnce(async_nats::Client) -> Started + Send + 'static,
        Started: Future<Output = Result<S, E1>>,
        Run: FnOnce(S, CancellationToken) -> Ran + Send + 'static,
        Ran: Future<Output = Result<(), E2>>,
        E1: std::error::Error + Send + Sync + 'static,
        E2: std::error::Error + 'static,
    {
        let (url, credentials) = (self.url(), self.credentials(user)?);
        let tls = self.config.nats.tls();
        Running::spawn(name, move |stop, ready| async move {
            let started = match connect(&url, &credentials, &tls, name).await {
                Ok(client) => start(client).await.map_err(anyhow::Error::from),
                Err(e) => Err(e.into()),
            };
            match started {
                Err(e) => {
                    let _ = ready.send(Err(e));
                }
                Ok(service) => {
                    let _ = ready.send(Ok(()));
                    if let Err(e) = run(service, stop).await {
                        let error = liaison_core::error::chain(&e);
                        error!(service = name, %error, "Service stopped");
                    }
                }
            }
        })
        .await
    }

    /// Starts the gateway (if it is not running).
    pub async fn start_gateway(&mut self) -> Result<()> {
        if self.gateway.is_some() {
            return Ok(());
        }
        let mut config = self.telemetry.config_for(&self.config, "gateway");
        // Its password: the auth callout's key and its system-account user
        // are derived from it (liaison_runtime::users::callout_key).
        let credentials = self.credentials(users::GATEWAY)?;
        config.nats.url = self.url();
        config.nats.user = credentials.user;
        config.nats.password = credentials.password;
        let (door, bound) = oneshot::channel();
        let plaintext = self.plaintext_store;
        let running = self
            .service(
                "gateway",
                users::GATEWAY,
                move |client| async move {
                    let gateway = if plaintext {
                        Gateway::start_with(
                            config,
                            client,
                            liaison_runtime::seal::Sealing::PlainForBenchmarks,
                        )
                        .await?
                    } else {
                        Gateway::start(config, client).await?
                    };
                    let _ = door.send((gateway.https_addr(), gateway.telemetry_addr()));
                    Ok::<_, liaison_gateway::GatewayError>(gateway)
                },
                |gateway, stop| gateway.run(stop),
            )
            .await?;
        let (https, telemetry) = bound.await.unwrap_or_default();
        self.https_addr = https;
        self.telemetry.bound("gateway", telemetry);
        self.gateway = Some(running);
        Ok(())
    }

    /// Where the gateway's HTTPS door listens, if it is open.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr
    }

    /// Where the gateway serves `/metrics`, `/healthz` and `/readyz`, if it does.
    pub fn gateway_telemetry_addr(&self) -> Option<SocketAddr> {
        self.telemetry_addr("gateway")
    }

    /// Where the audit service serves `/metrics`, `/healthz` and `/readyz`, if it does.
    pub fn audit_telemetry_addr(&self) -> Option<SocketAddr> {
        self.telemetry_addr("audit")
    }

    /// Where `service` (`gateway`, `audit`, `cases`, `linkage`, `alerts`)
    /// serves `/metrics`, `/healthz` and `/readyz`, if it does.
    pub fn telemetry_addr(&self, service: &str) -> Option<SocketAddr> {
        self.telemetry.bound.get(service).copied()
    }

    /// Stops the gateway, letting in-flight work finish.
    pub async fn stop_gateway(&mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.stop().await;
        }
    }

    /// Kills the gateway at once, as a crash would: in-flight work is dropped
    /// unfinished and unacknowledged.
    pub async fn kill_gateway(&mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.kill().await;
        }
    }

    /// Starts the audit service (if it is not running).
    pub async fn start_audit(&mut self) -> Result<()> {
        if self.audit.is_some() {
            return Ok(());
        }
        let config = self.telemetry.config_for(&self.config, "audit");
        let (listener, bound) = oneshot::channel();
        let running = self
            .service(
                "audit",
                users::AUDIT,
                |client| async move {
                    let audit = AuditService::start(config, client).await?;
                    let _ = listener.send(audit.telemetry_addr());
                    Ok::<_, liaison_audit::AuditError>(audit)
                },
                |audit, stop| audit.run(stop),
            )
            .await?;
        self.telemetry.bound("audit", bound.await.ok().flatten());
        self.audit = Some(running);
        Ok(())
    }

    /// Kills the audit service at once, as a crash would.
    pub async fn kill_audit(&mut self) {
        if let Some(audit) = self.audit.take() {
            audit.kill().await;
        }
    }

    /// Stops the audit service.
    pub async fn stop_audit(&mut self) {
        if let Some(audit) = self.audit.take() {
            audit.stop().await;
        }
    }

    /// Waits until every accepted envelope is routed and every decision record
    /// is chained into the ledger, or fails after `timeout`. A consumer that
    /// cannot be asked (a cluster electing a leader after a node was lost)
    /// counts as not settled yet; the last such error is named on failure.
    pub async fn wait_until_settled(&self, timeout: Duration) -> Result<()> {
        let js = async_nats::jetstream::new(self.connect_as(users::OPERATOR).await?);
        let deadline = std::time::Instant::now() + timeout;
        let mut ticks = tokio::time::interval(Duration::from_millis(20));
        let mut last_error = None;
        loop {
            ticks.tick().await;
            let mut pending = 0;
            let mut known = true;
            for (stream, consumer) in [
                (subjects::EVENTS_STREAM, subjects::ROUTER_CONSUMER),
                (subjects::DECISIONS_STREAM, subjects::LEDGER_WRITER_CONSUMER),
            ] {
                let asked = async {
                    let mut c: PullConsumer = js.get_consumer_from_stream(consumer, stream).await?;
                    let info = c.info().await?;
                    anyhow::Ok(info.num_pending + info.num_ack_pending as u64)
                }
                .await;
                match asked {
                    Ok(n) => pending += n,
                    Err(e) => {
                        known = false;
                        last_error = Some(format!("asking {stream}/{consumer}: {e}"));
                    }
                }
            }
            if known && pending == 0 {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                let error = last_error
                    .map(|e| format!(" (last error {e})"))
                    .unwrap_or_default();
                return Err(anyhow!(
                    "{pending} messages still waiting after {timeout:?}{error}"
                ));
            }
        }
    }

    /// The child nats-server (for fault tests); an error when the system
    /// runs on NATS run elsewhere.
    pub fn server_mut(&mut self) -> Result<&mut NatsServer> {
        self.server
            .as_mut()
            .ok_or_else(|| anyhow!("this system runs on a nats-server it did not start"))
    }

    /// Stops the console and the services, then nats-server, cleanly.
    pub async fn shutdown(mut self) -> Result<()> {
        self.stop_console().await;
        self.stop_cases().await;
        self.stop_linkage().await;
        self.stop_alerts().await;
        self.stop_gateway().await;
        self.stop_audit().await;
        let Some(mut server) = self.server else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || server.stop(Duration::from_secs(10)))
            .await
            .map_err(|e| anyhow!("stopping nats-server: {e}"))
    }
}
