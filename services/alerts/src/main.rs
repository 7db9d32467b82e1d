//! The alerts service as its own process: `liaison-alerts [CONFIG.toml]`.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    liaison_runtime::process::serve("liaison-alerts", liaison_alerts::run).await
}
