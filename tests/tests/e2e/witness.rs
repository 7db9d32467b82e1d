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

/// A witness served on a free port, keeping its state in `state`.
async fn witness_on(
    state: &std::path::Path,
    pem: &str,
    port: u16,
) -> Result<(
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<Result<()>>,
)> {
    let log = liaison_audit::signer(&config())?.verifier();
    let cosigner = Cosigner::from_pem("oversight.test/w1", pem)?;
    let witness = Arc::new(Witness::open(cosigner, &[log], state).map_err(anyhow::Error::msg)?);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let served = tokio::spawn(liaison_system::witness::serve(
        witness,
        listener,
        shutdown.clone(),
    ));
    Ok((shutdown, served))
}

/// A witness serving on a free port, and a system whose audit service has
/// it cosign every checkpoint (a quorum of one, checkpoints every second).
struct Witnessed {
    state: tempfile::TempDir,
    pem: String,
    port: u16,
    vkey: String,
    stop: tokio_util::sync::CancellationToken,
    served: tokio::task::JoinHandle<Result<()>>,
}

impl Witnessed {
    async fn start() -> Result<(Self, liaison_system::system::System)> {
        let state = tempfile::tempdir()?;
        let (pem, _) = liaison_system::keys::generate(liaison_core::tokens::KeyAlg::EdDSA)?;
        let vkey = Cosigner::from_pem("oversight.test/w1", &pem)?
            .verifier()
            .vkey();
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let (stop, served) = witness_on(state.path(), &pem, port).await?;
        let mut config = config();
        config.audit.witnesses = vec![liaison_runtime::config::WitnessConfig {
            url: format!("http://127.0.0.1:{port}"),
            key: vkey.clone(),
        }];
        config.audit.witness_quorum = 1;
        config.audit.checkpoint_interval_secs = 1;
        let system = liaison_tests::start_with(config).await?;
        Ok((
            Self {
                state,
                pem,
                port,
                vkey,
                stop,
                served,
            },
            system,
        ))
    }

    /// Stops the witness (its state stays).
    async fn stop_witness(&mut self) -> Result<()> {
        self.stop.cancel();
        (&mut self.served).await??;
        Ok(())
    }

    /// Starts the witness again on its port, from its state.
    async fn start_witness(&mut self) -> Result<()> {
        let (stop, served) = witness_on(self.state.path(), &self.pem, self.port).await?;
        self.stop = stop;
        self.served = served;
        Ok(())
    }
}

/// What the stored checkpoints say of the ledger's witnessing now.
async fn witnessing(
    system: &liaison_system::system::System,
    vkey: &str,
) -> Result<liaison_audit::cosign::Witnessing> {
    let (report, _) = liaison_tests::ledger_all(system).await?;
    let js =
        async_nats::jetstream::new(system.connect_as(liaison_runtime::users::INSPECTOR).await?);
    let notes = liaison_audit::verify::checkpoints(&js).await?;
    let log = liaison_audit::signer(&system.config)?.verifier();
    let witness = liaison_audit::witness::CosignatureVerifier::parse(vkey)?;
    Ok(liaison_audit::cosign::Witnessing::of(
        &log,
        &notes,
        &[witness],
        1,
        report.verified,
    ))
}

/// The audit service has each checkpoint cosigned by the configured
/// witness and stores the cosignature. With the witness down, records are
/// still accepted and checkpointed, and the tail no quorum cosigned is
/// reported; back up, the witness is sent a consistency proof from the size
/// it cosigned last and catches up.
#[tokio::test]
async fn checkpoints_are_cosigned_and_a_witness_that_was_down_catches_up() -> Result<()> {
    let (mut w, system) = Witnessed::start().await?;
    let vkey = w.vkey.clone();
    let school = liaison_tests::agency(&system, "school-a").await?;
    school
        .send(&liaison_tests::referral("school-a", "witnessed-1"))
        .await?;
    let first =
        liaison_tests::eventually("a cosigned checkpoint", Duration::from_secs(30), || async {
            let w = witnessing(&system, &vkey).await?;
            Ok((w.witnessed > 0 && w.witnessed == w.size).then_some(w))
        })
        .await?;
    assert!(first.holds(), "{first:?}");
    assert!(
        first.words().starts_with("witnessed: "),
        "{}",
        first.words()
    );

    // The witness goes down: shares go on, checkpoints are signed, and the
    // tail since its last cosignature is reported as not cosigned.
    w.stop_witness().await?;
    for n in 0..3 {
        school
            .send(&liaison_tests::referral(
                "school-a",
                &format!("unwitnessed-{n}"),
            ))
            .await?;
    }
    let down =
        liaison_tests::eventually("a tail not cosigned", Duration::from_secs(30), || async {
            let w = witnessing(&system, &vkey).await?;
            Ok((w.size > first.size && w.witnessed == first.witnessed).then_some(w))
        })
        .await?;
    assert!(
        down.words().contains("records are not cosigned yet"),
        "{}",
        down.words()
    );

    // Back up: it is sent a proof from what it cosigned and catches up.
    w.start_witness().await?;
    let caught_up =
        liaison_tests::eventually("the witness caught up", Duration::from_secs(30), || async {
            let w = witnessing(&system, &vkey).await?;
            Ok((w.witnessed == w.size && w.size > first.size).then_some(w))
        })
        .await?;
    assert!(
        !caught_up.words().contains("not cosigned yet"),
        "{}",
        caught_up.words()
    );
    w.stop_witness().await?;
    system.shutdown().await
}

/// An operator who holds the checkpoint key rewrites history: stops the
/// audit service, deletes LEDGER and CHECKPOINTS, and lets the ledger start
/// again without what it held (then grows it past the size the witness
/// cosigned, with freshly signed checkpoints). The witness refuses the fork
/// and keeps the evidence; verification finds no checkpoint of the new
/// ledger cosigned by the quorum, and names the missing cosignature.
#[tokio::test]
async fn a_history_rewritten_with_the_checkpoint_key_is_refused_by_the_witness_and_fails_verify()
-> Result<()> {
    let (mut w, mut system) = Witnessed::start().await?;
    let vkey = w.vkey.clone();
    let school = liaison_tests::agency(&system, "school-a").await?;
    for n in 0..3 {
        school
            .send(&liaison_tests::referral("school-a", &format!("honest-{n}")))
            .await?;
    }
    let honest = liaison_tests::eventually(
        "the honest ledger cosigned",
        Duration::from_secs(30),
        || async {
            let w = witnessing(&system, &vkey).await?;
            Ok((w.witnessed > 0 && w.witnessed == w.size).then_some(w))
        },
    )
    .await?;

    // The rewrite, with the operator's powers and the checkpoint key.
    system.stop_audit().await;
    let inspector =
        async_nats::jetstream::new(system.connect_as(liaison_runtime::users::INSPECTOR).await?);
    for stream in [
        liaison_core::subjects::LEDGER_STREAM,
        liaison_core::subjects::CHECKPOINTS_STREAM,
    ] {
        inspector.delete_stream(stream).await?;
    }
    let operator =
        async_nats::jetstream::new(system.connect_as(liaison_runtime::users::OPERATOR).await?);
    liaison_runtime::provision::provision(&operator, &system.config.streams, &system.registry)
        .await?;
    system.start_audit().await?;
    // The new ledger grows past the size the witness cosigned.
    let mut n = 0;
    let forks = w.state.path().join("forks");
    liaison_tests::eventually(
        "the witness refusing the fork",
        Duration::from_secs(60),
        || {
            n += 1;
            let school = &school;
            let id = format!("after-rewrite-{n}");
            let forks = forks.clone();
            async move {
                school
                    .send(&liaison_tests::referral("school-a", &id))
                    .await?;
                Ok((std::fs::read_dir(&forks)?.count() > 0).then_some(()))
            }
        },
    )
    .await?;
    let rewritten = witnessing(&system, &vkey).await?;
    assert!(rewritten.size > honest.size, "{rewritten:?}");
    assert!(!rewritten.holds(), "{rewritten:?}");
    assert!(
        rewritten
            .words()
            .contains("NOT WITNESSED: no checkpoint of this ledger is cosigned by 1 of its witnesses (missing cosignature by oversight.test/w1"),
        "{}",
        rewritten.words()
    );
    // The evidence names the fork: a checkpoint of the rewritten ledger.
    let evidence = std::fs::read_dir(&forks)?
        .next()
        .ok_or_else(|| anyhow::anyhow!("no evidence"))??;
    let text = std::fs::read_to_string(evidence.path())?;
    assert!(text.contains("is not consistent with the size"), "{text}");
    assert!(text.contains(&system.config.audit.origin), "{text}");
    w.stop_witness().await?;
    system.shutdown().await
}

/// A receipt for a share, from a running system whose checkpoints a witness
/// cosigns, checked from outside by `tests/witness/receipt_check.py`
/// (tlog-proof, signed-note, cosignature/v1 and RFC 9162 inclusion, written
/// from the specifications in Python), with only the public keys; and
/// refused by it with one byte of a record changed.
#[tokio::test]
#[allow(clippy::print_stderr)] // the skip note and the outside check's lines belong in the test log
async fn a_receipt_is_checked_from_outside_with_only_the_public_keys() -> Result<()> {
    if !python_present() {
        anyhow::ensure!(!in_ci(), "python3 is required in CI (CI is set)");
        eprintln!("SKIPPED: python3 not found; the receipt was not checked from outside");
        return Ok(());
    }
    let (mut w, system) = Witnessed::start().await?;
    let witness_key = liaison_audit::witness::CosignatureVerifier::parse(&w.vkey)?;
    let school = liaison_tests::agency(&system, "school-a").await?;
    school
        .send(&liaison_tests::referral("school-a", "receipted-1"))
        .await?;
    let log = liaison_audit::signer(&system.config)?.verifier();
    let js =
        async_nats::jetstream::new(system.connect_as(liaison_runtime::users::INSPECTOR).await?);
    let receipt =
        liaison_tests::eventually("a cosigned receipt", Duration::from_secs(30), || async {
            let built = liaison_audit::receipt::build(
                liaison_audit::verify::Access::Direct(js.clone()),
                &log,
                std::slice::from_ref(&witness_key),
                "school-a/receipted-1",
            )
            .await;
            Ok(built.ok().filter(|(r, _)| {
                r.proofs.len() == 3 && r.check(&log, std::slice::from_ref(&witness_key), 1).is_ok()
            }))
        })
        .await?
        .0;
    w.stop_witness().await?;
    system.shutdown().await?;

    let dir = tempfile::tempdir()?;
    let file = dir.path().join("receipt.json");
    std::fs::write(&file, serde_json::to_string_pretty(&receipt)?)?;
    let check = |file: std::path::PathBuf| {
        let log = log.vkey();
        let witness = witness_key.vkey();
        async move {
            let run = tokio::process::Command::new("bash")
                .arg(repo_root().join("clients/python/run.sh"))
                .arg("tests/witness/receipt_check.py")
                .arg(&file)
                .args([&log, &witness])
                .current_dir(repo_root())
                .kill_on_drop(true)
                .output();
            let output = tokio::time::timeout(Duration::from_secs(600), run).await??;
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            eprintln!("{text}");
            anyhow::Ok((output.status.success(), text))
        }
    };
    let (ok, text) = check(file.clone()).await?;
    assert!(ok, "{text}");
    assert!(
        text.contains("verified 3 records, cosigned by oversight.test/w1"),
        "{text}"
    );
    // One byte of the first record changed: the outside check refuses it.
    let mut altered = receipt.clone();
    let proof = &mut altered.proofs[0];
    let at = proof
        .find("extra ")
        .ok_or_else(|| anyhow::anyhow!("no extra line"))?
        + 12;
    let flipped = if proof.as_bytes()[at] == b'A' {
        "B"
    } else {
        "A"
    };
    proof.replace_range(at..=at, flipped);
    let bad = dir.path().join("altered.json");
    std::fs::write(&bad, serde_json::to_string_pretty(&altered)?)?;
    let (ok, text) = check(bad).await?;
    assert!(!ok, "{text}");
    Ok(())
}
