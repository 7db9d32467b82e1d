//! The Python example (clients/python) against a whole running system: a
//! system that is not Rust signs its own token by the wire contract, sends a
//! referral as school-a, and reads and acknowledges the police's copy.
//!
//! It needs Python 3 with venv and pip (`run_example.sh` installs the
//! pinned requirements into `.tools/python-venv` on first use). In CI
//! (`CI=true`) a missing Python fails the test; elsewhere it is skipped with
//! a note.

use liaison_proto::v1::{Decision, Operation};
use liaison_runtime::users;
use liaison_tests::{agency, in_ci, inbox_exactly, ledger, python_present, repo_root, start};
use std::time::{Duration, Instant};

#[tokio::test]
#[allow(clippy::print_stderr)] // the skip note and the example's run time belong in the test log
async fn a_python_system_sends_a_referral_and_the_police_read_it() -> anyhow::Result<()> {
    if !python_present() {
        anyhow::ensure!(
            !in_ci(),
            "python3 is required in CI (CI is set): the Python example must run"
        );
        eprintln!("SKIPPED: python3 not found; the Python example was not run");
        return Ok(());
    }
    let system = start().await?;
    let started = Instant::now();
    let run = tokio::process::Command::new("bash")
        .arg(repo_root().join("clients/python/run_example.sh"))
        .args([
            "--audience",
            &system.config.gateway.audience,
            "--wait",
            "20",
        ])
        .env("LIAISON_NATS_URL", system.url())
        .env("SCHOOL_NATS_NKEY", liaison_tests::nkey_path("school-a"))
        .env("POLICE_NATS_NKEY", liaison_tests::nkey_path("police"))
        .current_dir(repo_root())
        .kill_on_drop(true)
        .output();
    // The first run creates the virtual environment and installs the requirements.
    let output = tokio::time::timeout(Duration::from_secs(600), run).await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!(
        "run_example.sh took {:.1} s\n{stdout}{stderr}",
        started.elapsed().as_secs_f64()
    );
    anyhow::ensure!(
        output.status.success(),
        "the Python example failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("verdict  ACCEPTED: delivered to council, police under ISA-EDU-01/send"),
        "{stdout}"
    );
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("envelope ")?.strip_suffix(" from school-a"))
        .ok_or_else(|| anyhow::anyhow!("no envelope line in {stdout}"))?
        .to_owned();
    assert!(
        stdout.contains(&format!("police read and acknowledged {id}")),
        "{stdout}"
    );

    // Numbered in the police's inbox, checked for gaps by the Python system.
    assert!(stdout.contains("delivery #1 "), "{stdout}");
    assert!(stdout.contains("numbers  1..1 all seen"), "{stdout}");
    // The police acknowledged it: its inbox position is written, nothing waits.
    let operator = system.connect_as(users::INSPECTOR).await?;
    let backlog =
        liaison_runtime::inbox::ask_backlog(&operator, &liaison_core::AgencyId::parse("police")?)
            .await
            .map_err(anyhow::Error::msg)?;
    assert_eq!((backlog.last, backlog.waiting), (1, 0), "{backlog:?}");
    // The council's copy is its own, still waiting for it.
    let to_council = inbox_exactly(&agency(&system, "council").await?, 1).await?;
    assert_eq!(
        to_council[0].envelope.as_ref().map(|e| e.id.as_str()),
        Some(id.as_str())
    );

    // The ledger: the school's collection, by the Python system, and both disclosures.
    let (report, records) = ledger(&system).await?;
    assert!(report.intact(), "{report:?}");
    let mine: Vec<_> = records.iter().filter(|r| r.envelope_id == id).collect();
    let collection = mine
        .iter()
        .find(|r| r.operation == Operation::Collection as i32)
        .ok_or_else(|| anyhow::anyhow!("no collection record for {id}: {records:#?}"))?;
    assert_eq!(collection.decision, Decision::Accepted as i32);
    assert_eq!(
        (collection.agency.as_str(), collection.author.as_str()),
        ("school-a", "school-a-python-example")
    );
    let mut disclosed: Vec<String> = mine
        .iter()
        .filter(|r| r.operation == Operation::Disclosure as i32)
        .map(|r| r.recipients.join(","))
        .collect();
    disclosed.sort();
    assert_eq!(disclosed, ["council", "police"]);
    system.shutdown().await
}
