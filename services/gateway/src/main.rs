//! The gateway as its own process: `liaison-gateway [CONFIG.toml]`.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    liaison_runtime::process::serve("liaison-gateway", liaison_gateway::run).await
}
