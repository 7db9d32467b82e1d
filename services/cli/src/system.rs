//! A whole Liaison system in one process: a child nats-server with one user
//! per service and per agency, the streams provisioned, and the gateway and
//! audit services running in-process with their own users. Behind
//! `liaison up`, `liaison demo` and the end-to-end tests.

use anyhow::{Context as _, Result, anyhow};
use liaison_audit::AuditService;
use liaison_gateway::Gateway;
use liaison_kit::config::Config;
use liaison_kit::connect::connect;
use liaison_kit::nats_server::{NatsServer, ServerOptions};
use liaison_kit::provision::provision;
use liaison_kit::registry::Registry;
use liaison_kit::session::Session;
use liaison_kit::users::{self, Credentials};
use std::path::PathBuf;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::error;

/// Where and how to run the child nats-server.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Client port; `None` picks a free one.
    pub port: Option<u16>,
    /// JetStream store; `None` uses a temporary one.
    pub store_dir: Option<PathBuf>,
    /// JetStream `sync_interval`, e.g. "always".
    pub sync_interval: Option<String>,
}

struct Running {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// A running system; [`System::shutdown`] stops it cleanly, dropping it kills the server.
pub struct System {
    pub config: Config,
    pub registry: Registry,
    pub session: Session,
    server: NatsServer,
    gateway: Option<Running>,
    audit: Option<Running>,
}

impl System {
    /// Starts nats-server, provisions streams and starts gateway and audit.
    pub async fn start(config: Config, options: UpOptions) -> Result<Self> {
        let registry = Registry::load(&config.paths.registry)?;
        let plan = users::plan(&registry.ids());
        let server = NatsServer::start(&ServerOptions {
            port: options.port,
            store_dir: options.store_dir.clone(),
            sync_interval: options.sync_interval.clone(),
            users: plan.clone(),
        })?;
        let session = Session {
            nats_url: server.url(),
            users: plan
                .iter()
                .map(|u| (u.credentials.user.clone(), u.credentials.password.clone()))
                .collect(),
        };
        let mut system = Self {
            config,
            registry,
            session,
            server,
            gateway: None,
            audit: None,
        };
        let operator = system.connect_as(users::OPERATOR).await?;
        provision(
            &async_nats::jetstream::new(operator),
            &system.config.streams,
            &system.registry.ids(),
        )
        .await?;
        system.start_audit().await?;
        system.start_gateway().await?;
        Ok(system)
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn credentials(&self, user: &str) -> Result<Credentials> {
        Ok(self.session.credentials(user, &PathBuf::from("<in-process>"))?)
    }

    /// Connects as one of the system's NATS users.
    pub async fn connect_as(&self, user: &str) -> Result<async_nats::Client> {
        Ok(connect(&self.server.url(), &self.credentials(user)?, user).await?)
    }

    /// Starts the gateway (if it is not running).
    pub async fn start_gateway(&mut self) -> Result<()> {
        if self.gateway.is_some() {
            return Ok(());
        }
        let client = self.connect_as(users::GATEWAY).await?;
        let gateway = Gateway::start(self.config.clone(), client).await.context("gateway")?;
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = gateway.run(token).await {
                error!(error = %e, "Gateway stopped");
            }
        });
        self.gateway = Some(Running { stop, task });
        Ok(())
    }

    /// Stops the gateway, letting in-flight work finish.
    pub async fn stop_gateway(&mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.stop().await;
        }
    }

    /// Starts the audit service (if it is not running).
    pub async fn start_audit(&mut self) -> Result<()> {
        if self.audit.is_some() {
            return Ok(());
        }
        let client = self.connect_as(users::AUDIT).await?;
        let audit = AuditService::start(client).await.context("audit")?;
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = audit.run(token).await {
                error!(error = %e, "Audit service stopped");
            }
        });
        self.audit = Some(Running { stop, task });
        Ok(())
    }

    /// Stops the audit service.
    pub async fn stop_audit(&mut self) {
        if let Some(audit) = self.audit.take() {
            audit.stop().await;
        }
    }

    /// The child nats-server (for fault tests).
    pub fn server_mut(&mut self) -> &mut NatsServer {
        &mut self.server
    }

    /// Stops the services, then nats-server, cleanly.
    pub async fn shutdown(mut self) -> Result<()> {
        self.stop_gateway().await;
        self.stop_audit().await;
        let mut server = self.server;
        tokio::task::spawn_blocking(move || server.stop(Duration::from_secs(10)))
            .await
            .map_err(|e| anyhow!("stopping nats-server: {e}"))
    }
}
