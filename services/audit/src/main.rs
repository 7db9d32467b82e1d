//! The audit service as its own process: `liaison-audit [CONFIG.toml]`.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    liaison_runtime::process::serve("liaison-audit", liaison_audit::run).await
}
