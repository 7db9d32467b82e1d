//! The cases service as its own process: `liaison-cases [CONFIG.toml]`.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    liaison_runtime::process::serve("liaison-cases", liaison_cases::run).await
}
