//! The linkage service as its own process: `liaison-linkage [CONFIG.toml]`.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    liaison_runtime::process::serve("liaison-linkage", liaison_linkage::run).await
}
