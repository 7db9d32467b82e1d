//! The separate processes the fault suites (`consumer_faults.rs`,
//! `service_faults.rs`) stop, resume and kill with real signals; a test
//! cannot SIGSTOP or SIGKILL a part of itself. `FAULT_ROLE` says which:
//!
//! - `gateway`, `audit`: the service exactly as its own binary runs it
//!   (`liaison-gateway CONFIG.toml`, `liaison-audit CONFIG.toml`: the same
//!   `liaison_runtime::process::serve` call); built here because an integration
//!   test can only find the binaries of its own crate;
//! - `recorder`: an agency system reading its inbox —
//!   `fault-process URL AGENCY OUT [N hang|stop]`, the NATS password in
//!   `RECORDER_NATS_PASSWORD`. For each batch it appends one line per
//!   delivery to OUT (`<envelope id> <delivery count> <digest of the
//!   delivery>`), syncs the file, and only then acknowledges the batch, as a
//!   recipient that stores before acknowledging does. With `N hang` or
//!   `N stop`, once N lines are stored it writes the ids of the batch it has
//!   not yet acknowledged to `OUT.held`, then either hangs there (held open
//!   for the test's SIGKILL: a crash between storing and acknowledging) or
//!   sends itself SIGSTOP (frozen by the kernel in that window until the
//!   test's SIGCONT), and carries on if it is ever let go.
//!
//! It appends every copy it is handed, duplicates included: counting them is
//! the point. A real recipient stores under the envelope id instead.

use anyhow::{Context as _, Result, bail};
use liaison_client::{AgencyClient, DEFAULT_AUDIENCE};
use liaison_core::AgencyId;
use liaison_tests::fault::Handed;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[tokio::main]
async fn main() -> ExitCode {
    let role = std::env::var("FAULT_ROLE").unwrap_or_default();
    match role.as_str() {
        "gateway" => liaison_runtime::process::serve("liaison-gateway", liaison_gateway::run).await,
        "audit" => liaison_runtime::process::serve("liaison-audit", liaison_audit::run).await,
        _ => {
            liaison_runtime::telemetry::init("info");
            let result = match role.as_str() {
                "recorder" => record().await,
                _ => Err(anyhow::anyhow!(
                    "FAULT_ROLE must be gateway, audit or recorder"
                )),
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(role, error = %format!("{e:#}"), "Stopped with an error");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn record() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (url, agency, out, mut hold) = match args.as_slice() {
        [url, agency, out] => (url, agency, out, None),
        [url, agency, out, n, then] if then == "hang" || then == "stop" => {
            (url, agency, out, Some((n.parse::<usize>()?, then.as_str())))
        }
        _ => bail!("usage: fault-process URL AGENCY OUT [N hang|stop]"),
    };
    let client = AgencyClient::connect(
        url,
        &liaison_tests::nkey(agency),
        AgencyId::parse(agency)?,
        &liaison_tests::key_pem(agency)?,
        DEFAULT_AUDIENCE,
    )
    .await?;
    let out = PathBuf::from(out);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&out)
        .with_context(|| out.display().to_string())?;
    let mut stored = 0;
    loop {
        let batch = match client.next_batch(64, Duration::from_millis(500)).await {
            Ok(batch) => batch,
            Err(e) => {
                // What a long-running consumer does: carry on; whatever was
                // handed out and not acknowledged comes back after ack_wait.
                tracing::warn!(error = %e, "Fetch failed; fetching again");
                continue;
            }
        };
        if batch.is_empty() {
            continue;
        }
        let mut lines = String::new();
        for received in &batch {
            lines.push_str(&Handed::of(received).line());
            lines.push('\n');
        }
        file.write_all(lines.as_bytes())?;
        file.sync_data()?;
        stored += batch.len();
        if let Some((n, then)) = hold.filter(|(n, _)| stored >= *n) {
            hold = None;
            let ids: Vec<&str> = batch.iter().map(|r| r.envelope_id()).collect();
            let partial = out.with_extension("held.partial");
            std::fs::write(&partial, ids.join("\n"))?;
            std::fs::rename(&partial, out.with_extension("held"))?;
            tracing::info!(
                stored = n,
                held = ids.len(),
                then,
                "Holding a stored batch unacknowledged"
            );
            if then == "hang" {
                // Wait here for the SIGKILL.
                std::future::pending::<()>().await;
            }
            let me = std::process::id().to_string();
            std::process::Command::new("kill")
                .args(["-s", "STOP", &me])
                .status()?;
        }
        for received in &batch {
            if let Err(e) = received.ack().await {
                tracing::warn!(error = %e, "Acknowledgement failed; it will come again");
            }
        }
    }
}
