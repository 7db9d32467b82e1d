//! The witness (issue 22, docs/decisions/0023-witnesses.md), driven from
//! outside: `tests/witness/witness_interop.py` plays a transparency log that
//! shares no code with Liaison — its checkpoints, RFC 6962 trees and
//! consistency proofs, tlog-witness requests and cosignature/v1 checks are
//! written from the C2SP specifications with Python's `cryptography` and
//! `urllib` — against a Liaison witness serving HTTP.

use anyhow::{Result, bail};
use liaison_audit::witness::{Cosigner, Witness};
use liaison_tests::{config, in_ci, python_present, repo_root};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
#[allow(clippy::print_stderr)] // the skip note and the outside log's checks belong in the test log
async fn a_witness_cosigns_for_a_log_written_from_the_specifications_and_refuses_its_forks()
-> Result<()> {
    if !python_present() {
        anyhow::ensure!(
            !in_ci(),
            "python3 is required in CI (CI is set): the witness must be driven from outside"
        );
        eprintln!("SKIPPED: python3 not found; the witness was not driven from outside");
        return Ok(());
    }
    let config = config();
    let log = liaison_audit::signer(&config)?.verifier();
    let (pem, _) = liaison_system::keys::generate(liaison_core::tokens::KeyAlg::EdDSA)?;
    let cosigner = Cosigner::from_pem("oversight.test/w1", &pem)?;
    let vkey = cosigner.verifier().vkey();
    let state = tempfile::tempdir()?;
    let witness =
        Arc::new(Witness::open(cosigner, &[log], state.path()).map_err(anyhow::Error::msg)?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let served = tokio::spawn(liaison_system::witness::serve(
        witness.clone(),
        listener,
        shutdown.clone(),
    ));

    let run = tokio::process::Command::new("bash")
        .arg(repo_root().join("clients/python/run.sh"))
        .args([
            "tests/witness/witness_interop.py",
            &url,
            &vkey,
            &config.audit.checkpoint_key.display().to_string(),
            &config.audit.origin,
        ])
        .current_dir(repo_root())
        .kill_on_drop(true)
        .output();
    // The first run creates the virtual environment and installs the requirements.
    let output = tokio::time::timeout(Duration::from_secs(600), run).await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}{stderr}");
    if !output.status.success() || !stdout.contains("\"failed\": 0") {
        bail!("the outside log's checks failed:\n{stdout}{stderr}");
    }
    assert!(stdout.contains("\"checks\": 11"), "{stdout}");
    // The fork and the rewritten history are kept as evidence; the honest
    // log's last checkpoint (20 records) is what the witness stands by.
    let evidence = std::fs::read_dir(state.path().join("forks"))?.count();
    assert_eq!(evidence, 2, "evidence kept");
    assert_eq!(
        witness.latest(&config.audit.origin).map(|c| c.size),
        Some(20)
    );
    shutdown.cancel();
    served.await??;
    Ok(())
}
