//! Running one service as its own process: configuration from the file named
//! by the first argument (or defaults) and `LIAISON_*` variables, logging,
//! connecting as the configured NATS user, and a shutdown token cancelled by
//! Ctrl-C or SIGTERM. Each service's `main` is this one call.

use crate::config::Config;
use crate::telemetry;
use liaison_core::Credentials;
use liaison_core::connect::connect;
use liaison_core::error::chain;
use std::error::Error;
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// Runs `run(config, client, shutdown)` as the process `name`, its
/// configuration file named by the first argument.
pub async fn serve<F, Fut, E>(name: &'static str, run: F) -> ExitCode
where
    F: FnOnce(Config, async_nats::Client, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Error + 'static,
{
    let path = std::env::args_os().nth(1).map(PathBuf::from);
    serve_with(name, path, run).await
}

/// [`serve`], with the configuration file given (`None`: defaults and
/// `LIAISON_*` variables only), as `liaison serve SERVICE` runs it.
pub async fn serve_with<F, Fut, E>(name: &'static str, path: Option<PathBuf>, run: F) -> ExitCode
where
    F: FnOnce(Config, async_nats::Client, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Error + 'static,
{
    let config = Config::load(path.as_deref());
    let wanted = config
        .as_ref()
        .map(|c| c.telemetry.clone())
        .unwrap_or_default();
    let result = match (telemetry::init_with("info", &wanted, name), config) {
        (Err(e), _) => Err(ServeError::Telemetry(e)),
        (Ok(_), Err(e)) => Err(ServeError::Config(e)),
        (Ok(telemetry), Ok(config)) => {
            let result = start(name, config, run).await;
            telemetry.shutdown();
            result
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain of causes: what failed and why.
            tracing::error!(service = name, error = %chain(&e), "Stopped with an error");
            ExitCode::FAILURE
        }
    }
}

async fn start<F, Fut, E>(name: &'static str, config: Config, run: F) -> Result<(), ServeError<E>>
where
    F: FnOnce(Config, async_nats::Client, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Error + 'static,
{
    let credentials = Credentials {
        user: config.nats.user.clone(),
        password: config.nats.password.clone(),
    };
    config.nats.check_tls_files().map_err(ServeError::Tls)?;
    let client = connect(&config.nats.url, &credentials, &config.nats.tls(), name)
        .await
        .map_err(ServeError::Connect)?;
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(ServeError::Signal)?;
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        on_signal.cancel();
    });
    run(config, client, shutdown)
        .await
        .map_err(ServeError::Service)
}

/// Why a service process stopped with an error; each keeps its cause.
#[derive(Debug, thiserror::Error)]
enum ServeError<E: Error + 'static> {
    #[error(transparent)]
    Config(crate::config::ConfigError),
    #[error(transparent)]
    Telemetry(telemetry::TelemetryError),
    #[error("NATS TLS files: {0}")]
    Tls(String),
    #[error(transparent)]
    Connect(liaison_core::connect::ConnectError),
    #[error("listening for SIGTERM")]
    Signal(#[source] std::io::Error),
    #[error(transparent)]
    Service(E),
}
