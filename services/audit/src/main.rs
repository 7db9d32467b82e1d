//! The audit service as its own process: `liaison-audit [CONFIG.toml]`.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    liaison_kit::process::serve("liaison-audit", |_config, client, shutdown| {
        liaison_audit::run(client, shutdown)
    })
    .await
}
