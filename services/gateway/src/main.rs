//! The gateway as its own process: reads config, connects, serves until Ctrl-C.
use anyhow::Context as _;
use liaison_kit::{config::Config, connect::connect, telemetry, users::Credentials};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("info");
    let path = std::env::args_os().nth(1).map(std::path::PathBuf::from);
    let config = Config::load(path.as_deref())?;
    let credentials = Credentials {
        user: config.nats.user.clone(),
        password: config.nats.password.clone(),
    };
    let client = connect(&config.nats.url, &credentials, "liaison-gateway").await?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_signal.cancel();
    });
    liaison_gateway::run(config, client, shutdown)
        .await
        .context("gateway")
}
