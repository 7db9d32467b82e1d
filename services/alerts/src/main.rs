//! The alerts service as its own process: `liaison-alerts [CONFIG.toml]`.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    liaison_kit::process::serve("liaison-alerts", liaison_alerts::run).await
}
