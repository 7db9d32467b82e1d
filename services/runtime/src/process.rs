//! Running one service as its own process: configuration from the file named
//! by the first argument (or defaults) and `LIAISON_*` variables, logging,
//! connecting as the configured NATS user, and a shutdown token cancelled by
//! Ctrl-C or SIGTERM. Each service's `main` is this one call.

use crate::config::Config;
use crate::telemetry;
use liaison_core::Credentials;
use liaison_core::connect::connect;
use std::fmt::Display;
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
    E: Display,
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
    E: Display,
{
    let config = Config::load(path.as_deref());
    let wanted = config
        .as_ref()
        .map(|c| c.telemetry.clone())
        .unwrap_or_default();
    let result = match (telemetry::init_with("info", &wanted, name), config) {
        (Err(e), _) => Err(e.to_string()),
        (Ok(_), Err(e)) => Err(e.to_string()),
        (Ok(telemetry), Ok(config)) => {
            let result = start(name, config, run).await;
            telemetry.shutdown();
            result
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(service = name, error = %e, "Stopped with an error");
            ExitCode::FAILURE
        }
    }
}

async fn start<F, Fut, E>(name: &'static str, config: Config, run: F) -> Result<(), String>
where
    F: FnOnce(Config, async_nats::Client, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let credentials = Credentials {
        user: config.nats.user.clone(),
        password: config.nats.password.clone(),
    };
    config.nats.check_tls_files()?;
    let client = connect(&config.nats.url, &credentials, &config.nats.tls(), name)
        .await
        .map_err(|e| e.to_string())?;
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        on_signal.cancel();
    });
    run(config, client, shutdown)
        .await
        .map_err(|e| e.to_string())
}
