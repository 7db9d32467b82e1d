//! The council's case-system adapter (`liaison_client::adapter`, run by
//! `clients/rust/examples/council_adapter.rs`) against a whole running system:
//! it forwards the council's case updates from its outbox (moved to `sent/`
//! or `refused/` with the verdict or reason beside them), files the
//! referrals schools and the NHS make to it into `inbox/`, and stays
//! idempotent when a file is sent again after a crash or a delivery comes
//! again after a lost acknowledgement.

use liaison_client::RetryPolicy;
use liaison_client::adapter::{Adapter, Dirs, Outcome};
use liaison_proto::json;
use liaison_proto::v1::{Decision, Delivery, Envelope, Operation};
use liaison_tests::{agency, eventually, inbox_exactly, ledger, referral, repo_root, start};
use std::path::Path;
use std::time::Duration;

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn names(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    Ok(names)
}

#[tokio::test]
async fn the_council_adapter_forwards_its_updates_and_files_its_referrals() -> anyhow::Result<()> {
    let system = start().await?;
    // The cases service will own participation; an operator records it here.
    liaison_tests::set_participants(&system, "CASE-0042", &["police", "council", "nhs-trust"])
        .await?;
    let school = agency(&system, "school-a").await?;
    let nhs = agency(&system, "nhs-trust").await?;
    let police = agency(&system, "police").await?;
    let council = agency(&system, "council").await?;

    // A school and the NHS refer children to the council (and the police).
    school.submit(&referral("school-a", "school-ref-1")).await?;
    let mut from_nhs = referral("nhs-trust", "nhs-ref-1");
    from_nhs.legal_basis = "DPA-2018-sch1-p18".into();
    nhs.submit(&from_nhs).await?;

    // The case system drops the council's own case updates into its outbox.
    let root = tempfile::tempdir()?;
    let adapter = Adapter::new(&council, Dirs::under(root.path()), "council-case-system")?;
    let dirs = adapter.dirs().clone();
    let sample = read(&repo_root().join("clients/rust/examples/data/council-case-update.json"))?;
    std::fs::write(dirs.outbox.join("01-case-update.json"), &sample)?;
    std::fs::write(
        dirs.outbox.join("02-not-participating.json"),
        sample.replace("CASE-0042", "CASE-9999"),
    )?;
    std::fs::write(dirs.outbox.join("03-garbled.json"), "{ \"caseId\": ")?;
    std::fs::write(
        dirs.outbox.join("04-no-case.json"),
        sample.replace("\"caseId\": \"CASE-0042\",", ""),
    )?;
    std::fs::write(dirs.outbox.join(".05-being-written.json"), "{")?;

    let forwarded = adapter.forward_outbox().await?;
    let outcomes: Vec<(&str, &str)> = forwarded
        .iter()
        .map(|f| {
            let what = match &f.outcome {
                Outcome::Sent(r) if r.duplicate => "duplicate",
                Outcome::Sent(_) => "sent",
                Outcome::Refused { code, .. } => code,
                Outcome::Deferred(_) => "deferred",
            };
            (f.file.as_str(), what)
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("01-case-update.json", "sent"),
            ("02-not-participating.json", "policy_denied"),
            ("03-garbled.json", "malformed_envelope"),
            ("04-no-case.json", "invalid_field"),
        ]
    );
    let Outcome::Sent(receipt) = &forwarded[0].outcome else {
        anyhow::bail!("not sent: {forwarded:?}");
    };
    assert_eq!(receipt.recipients, ["nhs-trust", "police"]);
    // The id was written into the file before it was sent, and kept.
    let sent: Envelope =
        json::from_json("Envelope", &read(&dirs.sent.join("01-case-update.json"))?)?;
    assert_eq!(sent.id, receipt.envelope_id);
    assert_eq!(sent.author, "council-case-system");
    let verdict = read(&dirs.sent.join("01-case-update.verdict.json"))?;
    assert!(
        verdict.contains("OUTCOME_ACCEPTED") && verdict.contains(&sent.id),
        "{verdict}"
    );
    for (file, starts) in [
        ("02-not-participating.reason.txt", "policy_denied: "),
        ("03-garbled.reason.txt", "malformed_envelope: "),
        (
            "04-no-case.reason.txt",
            "invalid_field: envelope field case_id",
        ),
    ] {
        let reason = read(&dirs.refused.join(file))?;
        assert!(reason.starts_with(starts), "{file}: {reason}");
    }
    assert_eq!(names(&dirs.outbox)?, [".05-being-written.json"]);

    // The referrals to the council are filed, health notes included (ISA-EDU-01,
    // ISA-HEALTH-01); the council's own update is not sent back to it.
    let adapter = &adapter;
    let filed = eventually(
        "both referrals filed",
        Duration::from_secs(10),
        || async move {
            adapter.file_inbox(10, Duration::from_millis(200)).await?;
            let filed = names(&adapter.dirs().inbox)?;
            Ok((filed.len() >= 2).then_some(filed))
        },
    )
    .await?;
    assert_eq!(filed, ["nhs-ref-1.json", "school-ref-1.json"]);
    let delivery: Delivery =
        json::from_json("Delivery", &read(&dirs.inbox.join("school-ref-1.json"))?)?;
    let envelope = delivery.envelope.unwrap_or_default();
    assert_eq!(
        (envelope.sender_agency.as_str(), delivery.recipient.as_str()),
        ("school-a", "council")
    );
    assert!(
        format!("{envelope:?}").contains("Under CAMHS"),
        "the council sees health notes"
    );

    // The police received the council's update, once.
    let to_police = inbox_exactly(&police, 3).await?;
    let updates: Vec<&str> = to_police
        .iter()
        .filter_map(|d| d.envelope.as_ref())
        .filter(|e| e.sender_agency == "council")
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(updates, [sent.id.as_str()]);

    // A crash after sending but before the move: the file is still in the
    // outbox with its id. Sent again, it is a duplicate, delivered no more.
    std::fs::copy(
        dirs.sent.join("01-case-update.json"),
        dirs.outbox.join("01-case-update.json"),
    )?;
    let again = adapter.forward_outbox().await?;
    assert!(
        matches!(&again[0].outcome, Outcome::Sent(r) if r.duplicate),
        "{again:?}"
    );
    assert!(
        dirs.sent
            .join(format!("01-case-update-{}.json", sent.id))
            .exists()
    );
    inbox_exactly(&police, 0).await?;

    // A delivery whose acknowledgement was lost after its file was written
    // (here: taken, file written, never acknowledged) comes again after the
    // ack wait (2 s) and is acknowledged without being written twice.
    school.submit(&referral("school-a", "school-ref-2")).await?;
    let taken = eventually("the second referral", Duration::from_secs(10), || async {
        let batch = council.next_batch(1, Duration::from_millis(200)).await?;
        Ok(batch.into_iter().next())
    })
    .await?;
    assert_eq!(taken.envelope_id(), "school-ref-2");
    std::fs::write(
        dirs.inbox.join("school-ref-2.json"),
        "written before the crash\n",
    )?;
    drop(taken);
    let refiled = eventually("the redelivery", Duration::from_secs(10), || async move {
        Ok(adapter
            .file_inbox(10, Duration::from_millis(200))
            .await?
            .pop())
    })
    .await?;
    assert_eq!(
        (refiled.envelope_id.as_str(), refiled.already_filed),
        ("school-ref-2", true)
    );
    assert_eq!(
        read(&dirs.inbox.join("school-ref-2.json"))?,
        "written before the crash\n"
    );
    let council = liaison_core::AgencyId::parse("council")?;
    assert_eq!(
        liaison_tests::fault::inbox_pending(&system, &council).await?,
        0
    );

    // The ledger: the council's accepted update and its refused one; what the
    // adapter refused locally never reached the gateway.
    let (report, records) = ledger(&system).await?;
    assert!(report.intact(), "{report:?}");
    // In either order: a refusal is recorded as it is answered, an
    // acceptance once its commit is routed (ADR 0024).
    let mut council_collections: Vec<(i32, &str)> = records
        .iter()
        .filter(|r| r.operation == Operation::Collection as i32 && r.agency == "council")
        .filter(|r| r.decision != Decision::Duplicate as i32)
        .map(|r| (r.decision, r.code.as_str()))
        .collect();
    council_collections.sort_unstable();
    assert_eq!(
        council_collections,
        [
            (Decision::Accepted as i32, ""),
            (Decision::Refused as i32, "policy_denied")
        ]
    );
    system.shutdown().await
}

#[tokio::test]
async fn a_file_sent_while_the_gateway_is_down_waits_in_the_outbox_with_its_id()
-> anyhow::Result<()> {
    let mut system = start().await?;
    liaison_tests::set_participants(&system, "CASE-0042", &["police", "council"]).await?;
    let council = agency(&system, "council")
        .await?
        .with_retry(RetryPolicy::for_up_to(Duration::from_millis(300)));
    let root = tempfile::tempdir()?;
    let adapter = Adapter::new(&council, Dirs::under(root.path()), "council-case-system")?;
    let outbox = adapter.dirs().outbox.clone();
    let sample = read(&repo_root().join("clients/rust/examples/data/council-case-update.json"))?;
    std::fs::write(outbox.join("01-first.json"), &sample)?;
    std::fs::write(outbox.join("02-second.json"), &sample)?;

    system.stop_gateway().await;
    let pass = adapter.forward_outbox().await?;
    assert_eq!(
        pass.len(),
        1,
        "the pass stops at the first deferred file: {pass:?}"
    );
    assert!(matches!(pass[0].outcome, Outcome::Deferred(_)), "{pass:?}");
    assert_eq!(names(&outbox)?, ["01-first.json", "02-second.json"]);
    // Its id was written into the file before the first attempt.
    let waiting: Envelope = json::from_json("Envelope", &read(&outbox.join("01-first.json"))?)?;
    assert_eq!(Some(&waiting.id), pass[0].envelope_id.as_ref());

    system.start_gateway().await?;
    let pass = adapter.forward_outbox().await?;
    let sent: Vec<(&str, Option<&str>, bool)> = pass
        .iter()
        .map(|f| {
            let sent = matches!(&f.outcome, Outcome::Sent(r) if !r.duplicate);
            (f.file.as_str(), f.envelope_id.as_deref(), sent)
        })
        .collect();
    assert_eq!(sent[0], ("01-first.json", Some(waiting.id.as_str()), true));
    assert!(sent[1].2, "{pass:?}");
    assert_ne!(sent[1].1, sent[0].1, "each file is its own share");
    assert!(names(&outbox)?.is_empty());
    system.shutdown().await
}
