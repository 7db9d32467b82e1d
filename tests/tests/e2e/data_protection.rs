//! Data protection by design (issue 21, ADR 0022): what agencies share is
//! stored encrypted, and erased by destroying its keys when its retention
//! ends, while the ledger stays whole.

use anyhow::{Result, bail};
use liaison_proto::v1::verdict::Outcome;
use liaison_proto::v1::{Decision, Operation};
use liaison_runtime::seal::SealError;
use liaison_runtime::users;
use liaison_system::system::{System, UpOptions};
use liaison_tests::{agency, config, eventually, ledger, referral, referral_of};
use std::path::Path;
use std::time::Duration;

/// The first envelope EVENTS holds: its scoped id and the accepted
/// envelope, sealed.
async fn first_event(system: &System) -> Result<(String, Vec<u8>)> {
    let inspector = async_nats::jetstream::new(system.connect_as(users::INSPECTOR).await?);
    let commits = liaison_tests::commits(&inspector).await?;
    let entry = commits
        .into_iter()
        .flat_map(|(_, c)| c.envelopes)
        .next()
        .ok_or_else(|| anyhow::anyhow!("EVENTS holds no envelope"))?;
    Ok((entry.scoped_id, entry.event))
}

/// Waits until `copies` disclosures of the envelope `id` are recorded.
async fn disclosed(system: &System, id: &str, copies: usize) -> Result<()> {
    eventually(
        &format!("{id} delivered"),
        Duration::from_secs(30),
        || async {
            let (_, records) = ledger(system).await?;
            let n = records
                .iter()
                .filter(|r| r.operation == Operation::Disclosure as i32 && r.envelope_id == id)
                .count();
            Ok((n == copies).then_some(()))
        },
    )
    .await
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Result<Vec<String>> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path)?
                .windows(needle.len())
                .any(|w| w == needle)
            {
                hits.push(path.display().to_string());
            }
        }
    }
    Ok(hits)
}

/// After a referral is shared and read, the JetStream store directory
/// holds none of its personal data in plain text — name, date of birth,
/// address, concern, health notes — though the recipients read every one of
/// them. The subject's pseudonymous token (in the facts and the ledger) is
/// found there: the search would find the rest if it were there.
#[tokio::test]
async fn the_store_files_hold_no_personal_data_in_plain_text() -> Result<()> {
    let store = tempfile::tempdir()?;
    let system = System::start(
        config(),
        UpOptions {
            inspector: true,
            store_dir: Some(store.path().to_path_buf()),
            ..UpOptions::default()
        },
    )
    .await?;
    let school = agency(&system, "school-a").await?;
    let police = agency(&system, "police").await?;
    let mut sent = referral("school-a", "grep-1");
    let Some(liaison_proto::v1::envelope::Body::Referral(body)) = sent.body.as_mut() else {
        bail!("not a referral");
    };
    let person = body.subject.get_or_insert_default();
    person.full_name = "Zenobia Quarrington-Vetch".into();
    person.date_of_birth = "2011-03-17".into();
    person.address = "Flat 9, Umbrella Mews".into();
    body.concern = "Watched beheading videos in the library".into();
    body.health_notes = "Prescribed sertraline by CAMHS".into();
    let token = person.token.clone();
    let verdict = school.send(&sent).await?;
    assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");

    // The police read it whole: authorised readers see the plain text.
    let read = eventually("the police's copy", Duration::from_secs(20), || async {
        let copies = police.inbox(1, Duration::from_millis(200)).await?;
        Ok(copies.into_iter().next())
    })
    .await?;
    let referral = referral_of(&read).cloned().unwrap_or_default();
    let subject = referral.subject.clone().unwrap_or_default();
    assert_eq!(subject.full_name, "Zenobia Quarrington-Vetch");
    assert_eq!(referral.concern, "Watched beheading videos in the library");
    // Everything recorded (the ledger is in the store too).
    let (report, _) = ledger(&system).await?;
    assert!(report.intact() && report.verified > 0, "{report:?}");

    for secret in [
        "Zenobia",
        "Quarrington-Vetch",
        "2011-03-17",
        "Umbrella Mews",
        "beheading videos",
        "sertraline",
    ] {
        let hits = files_containing(store.path(), secret.as_bytes())?;
        assert!(
            hits.is_empty(),
            "{secret:?} is in the store in plain text: {hits:?}"
        );
    }
    let control = files_containing(store.path(), token.as_bytes())?;
    assert!(
        !control.is_empty(),
        "the subject token should be found in the store (facts, ledger): the search is broken"
    );
    system.shutdown().await?;
    Ok(())
}

/// The policies of `deploy/policies` with every clause kept `retention`.
fn policies_kept_for(retention: &str) -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let source = liaison_tests::repo_root().join("deploy/policies");
    for entry in std::fs::read_dir(&source)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let mut text = std::fs::read_to_string(entry.path())?;
        if entry.path().extension().is_some_and(|e| e == "cedar") {
            text = text
                .lines()
                .filter(|l| !l.starts_with("@retention("))
                .collect::<Vec<_>>()
                .join("\n")
                .replace("@id(", &format!("@retention(\"{retention}\")\n@id("));
        }
        std::fs::write(dir.path().join(entry.file_name()), text)?;
    }
    Ok(dir)
}

/// A share whose agreement keeps it five seconds: once its retention ends,
/// the gateway destroys its key, records the erasure, and neither the
/// recipient nor anyone looking in EVENTS can read it any more — while the
/// ledger still verifies, whole, and shows the share and its erasure.
#[tokio::test]
async fn a_share_past_retention_becomes_unreadable_and_the_ledger_still_verifies() -> Result<()> {
    let policies = policies_kept_for("5s")?;
    let mut config = config();
    config.paths.policies = policies.path().to_path_buf();
    config.data.retention_sweep_secs = 1;
    let system = System::start(
        config,
        UpOptions {
            inspector: true,
            ..UpOptions::default()
        },
    )
    .await?;
    let school = agency(&system, "school-a").await?;
    let council = agency(&system, "council").await?;
    let verdict = school.send(&referral("school-a", "kept-5s")).await?;
    assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");
    // Delivered (to the police and the council) well before its retention ends.
    disclosed(&system, "kept-5s", 2).await?;

    // The erasure is recorded once its retention has ended.
    let erasure = eventually("the erasure record", Duration::from_secs(30), || async {
        let (_, records) = ledger(&system).await?;
        Ok(records
            .into_iter()
            .find(|r| r.operation == Operation::Erasure as i32 && r.code == "retention_ended"))
    })
    .await?;
    assert_eq!(erasure.decision, Decision::Accepted as i32);
    assert!(
        erasure.record_id.starts_with("erasure:until."),
        "{erasure:?}"
    );
    assert!(
        erasure.reason.contains("can no longer be read"),
        "{erasure:?}"
    );

    // EVENTS still holds the envelope's bytes, but once the key is destroyed
    // (just after the record) they no longer open.
    let (scoped_id, event) = first_event(&system).await?;
    let sealed_to = liaison_core::subjects::committed(&scoped_id);
    assert_eq!(sealed_to, format!("liaison.commits/{scoped_id}"));
    let erased = eventually("the event erased", Duration::from_secs(30), || async {
        // A keyring of its own each time: one that does not follow the
        // bucket keeps the keys it has read.
        let keys = system.keyring().await?;
        match keys.open(&sealed_to, &event).await {
            Err(SealError::Erased(name)) => Ok(Some(name)),
            Ok(_) => Ok(None),
            Err(e) => bail!("the event failed to open otherwise: {e}"),
        }
    })
    .await?;
    assert!(erased.starts_with("until."), "{erased}");
    // The council never read its copy: there is nothing left to read.
    let copies = council.inbox(10, Duration::from_millis(500)).await?;
    assert!(
        copies.is_empty(),
        "an erased copy was handed out: {copies:?}"
    );

    // The ledger verifies whole: the share, its disclosures, its erasure.
    let (report, records) = ledger(&system).await?;
    assert!(report.intact(), "{report:?}");
    assert!(report.verified >= records.len() as u64);
    let kinds: Vec<(i32, &str)> = records
        .iter()
        .filter(|r| r.envelope_id.ends_with("kept-5s") || r.operation == Operation::Erasure as i32)
        .map(|r| (r.operation, r.code.as_str()))
        .collect();
    assert!(
        kinds
            .iter()
            .any(|(o, _)| *o == Operation::Collection as i32),
        "{kinds:?}"
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|(o, _)| *o == Operation::Disclosure as i32)
            .count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|(o, c)| *o == Operation::Erasure as i32 && *c == "retention_ended")
            .count(),
        1,
        "recorded once: {kinds:?}"
    );
    // The subject report says so.
    let token = liaison_tests::test_token("kept-5s");
    let report = liaison_audit::subject::Report::of(
        &token,
        records.iter().enumerate().map(|(i, r)| (i as u64, r)),
    );
    assert_eq!(report.shares.len(), 1, "{report:?}");
    assert_eq!(
        report.shares[0].stored, "erased: retention ended",
        "{report:?}"
    );
    assert!(!report.shares[0].kept_until.is_empty(), "{report:?}");
    system.shutdown().await?;
    Ok(())
}

/// A referral about the subject of `referral(_, token_of)`, under its own id.
fn about(id: &str, token_of: &str) -> liaison_proto::v1::Envelope {
    let mut envelope = referral("school-a", id);
    if let Some(liaison_proto::v1::envelope::Body::Referral(body)) = envelope.body.as_mut() {
        body.subject.get_or_insert_default().token = liaison_tests::test_token(token_of);
    }
    envelope
}

/// The duty officer's signed request on the subject's data.
async fn rights(system: &System, action: &str, token: &str) -> Result<serde_json::Value> {
    rights_on(system, action, token, &[]).await
}

/// [`rights`], naming the envelopes about the subject (an erasure's).
async fn rights_on(
    system: &System,
    action: &str,
    token: &str,
    envelopes: &[&str],
) -> Result<serde_json::Value> {
    let operator = system.connect_as(users::OPERATOR).await?;
    let signed = liaison_system::admin::operator_token(
        &liaison_tests::repo_root().join("deploy/operators/dev-operator-keys/duty-officer.pem"),
        "duty-officer",
        60,
    )?;
    liaison_system::admin::ask_on(
        &operator,
        liaison_core::subjects::ADMIN_SUBJECTS,
        &signed,
        &serde_json::json!({
            "action": action, "token": token, "reason": "Held as evidence for proceedings",
            "envelopes": envelopes,
        }),
    )
    .await
}

/// A restricted subject's further shares are refused, naming the
/// restriction, then allowed once it is lifted; erasing the subject makes
/// every copy and envelope about them unreadable (a copy not yet read is
/// never handed out), a later share about them is read as usual, and the
/// ledger verifies whole with each request recorded.
#[tokio::test]
async fn a_restricted_subject_is_refused_until_lifted_and_an_erased_one_is_unreadable() -> Result<()>
{
    let system = liaison_tests::start().await?;
    let school = agency(&system, "school-a").await?;
    let police = agency(&system, "police").await?;
    let token = liaison_tests::test_token("rights-1");
    let accepted = |verdict: &liaison_proto::v1::Verdict| {
        assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");
    };
    accepted(&school.send(&about("rights-1", "rights-1")).await?);
    liaison_tests::inbox_exactly(&police, 1).await?;

    let done = rights(&system, "restrict", &token).await?;
    assert_eq!(done["done"], "restricted: no further shares", "{done}");
    let refused = school.send(&about("rights-2", "rights-1")).await?;
    assert_eq!(refused.outcome, Outcome::Refused as i32, "{refused:?}");
    assert_eq!(refused.code, "policy_denied");
    assert!(
        refused
            .reason
            .contains("restricted (DPA 2018 s.47(2)) by duty-officer: Held as evidence"),
        "{refused:?}"
    );
    // Another subject is not affected.
    accepted(&school.send(&about("rights-other", "rights-other")).await?);
    rights(&system, "unrestrict", &token).await?;
    accepted(&school.send(&about("rights-3", "rights-1")).await?);
    // Routed (two disclosures each: police and council), not yet read.
    disclosed(&system, "rights-3", 2).await?;

    let done = rights_on(
        &system,
        "erase",
        &token,
        &["school-a/rights-1", "school-a/rights-3"],
    )
    .await?;
    assert_eq!(
        done["done"], "erased: the subject's data key is destroyed; told council, police",
        "{done}"
    );
    // The police read rights-other and the notice (s.48), never rights-3.
    let read = liaison_tests::inbox_exactly(&police, 2).await?;
    let ids: Vec<&str> = read
        .iter()
        .filter_map(|d| d.envelope.as_ref().map(|e| e.id.as_str()))
        .collect();
    assert!(ids.contains(&"rights-other"), "{ids:?}");
    let notice = read
        .iter()
        .filter_map(|d| d.envelope.as_ref())
        .find(|e| e.kind() == "erasure_required")
        .ok_or_else(|| anyhow::anyhow!("no erasure notice in {ids:?}"))?;
    assert_eq!(notice.sender_agency, "liaison-gateway");
    assert_eq!(notice.legal_basis, "DPA-2018-s48");
    match notice.body.as_ref() {
        Some(liaison_proto::v1::envelope::Body::ErasureRequired(e)) => {
            assert_eq!(e.subject_token, token);
            assert_eq!(e.envelope_ids, ["school-a/rights-1", "school-a/rights-3"]);
        }
        other => bail!("not an erasure notice: {other:?}"),
    }
    // The police confirm erasing their copy of rights-1: recorded, answering the share.
    let confirm = police
        .envelope("police-dpo")
        .id("rights-1-erased")
        .purpose("data-subject-rights")
        .legal_basis("DPA-2018-s48")
        .classification(liaison_proto::v1::Classification::OfficialSensitive)
        .in_reply_to("school-a/rights-1")
        .body(liaison_proto::v1::envelope::Body::ErasureConfirmed(
            liaison_proto::v1::ErasureConfirmed { records_erased: 1 },
        ))
        .build()?;
    accepted(&police.send(&confirm).await?);
    // The first envelope in EVENTS (rights-1) no longer opens.
    let (scoped_id, event) = first_event(&system).await?;
    assert_eq!(scoped_id, "school-a/rights-1");
    match system
        .keyring()
        .await?
        .open(&liaison_core::subjects::committed(&scoped_id), &event)
        .await
    {
        Err(SealError::Erased(name)) => assert!(name.starts_with("subject."), "{name}"),
        other => bail!("the erased subject's envelope opened, or failed otherwise: {other:?}"),
    }
    // A later share about them is new data, under a new key: read as usual.
    accepted(&school.send(&about("rights-4", "rights-1")).await?);
    let read = liaison_tests::inbox_exactly(&police, 1).await?;
    assert_eq!(
        read[0].envelope.as_ref().map(|e| e.id.as_str()),
        Some("rights-4")
    );
    assert!(referral_of(&read[0]).is_some());

    let (report, records) = ledger(&system).await?;
    assert!(report.intact(), "{report:?}");
    let requests: Vec<&str> = records
        .iter()
        .filter(|r| r.subject_tokens.contains(&token) && r.operation == Operation::Erasure as i32)
        .map(|r| r.code.as_str())
        .collect();
    assert_eq!(
        requests,
        [
            "subject_restricted",
            "subject_unrestricted",
            "subject_erased"
        ]
    );
    // The subject report: the shares before the erasure are erased, the one
    // after retained, and the police's confirmation answers rights-1.
    let report = liaison_audit::subject::Report::of(
        &token,
        records.iter().enumerate().map(|(i, r)| (i as u64, r)),
    );
    let stored: Vec<(&str, &str)> = report
        .shares
        .iter()
        .map(|s| (s.envelope.as_str(), s.stored.as_str()))
        .collect();
    assert_eq!(
        stored,
        [
            ("school-a/rights-1", "erased: subject erased"),
            ("school-a/rights-3", "erased: subject erased"),
            ("school-a/rights-4", "retained"),
        ]
    );
    assert_eq!(report.shares[0].answers.len(), 1, "{report:?}");
    // The notices are disclosures; the police's confirmation an erasure
    // answering the share.
    let notices: Vec<&str> = records
        .iter()
        .filter(|r| r.kind == "erasure_required" && r.operation == Operation::Disclosure as i32)
        .flat_map(|r| r.recipients.iter().map(String::as_str))
        .collect();
    assert_eq!(notices, ["council", "police"]);
    assert!(
        records
            .iter()
            .any(|r| r.operation == Operation::Erasure as i32
                && r.agency == "police"
                && r.in_reply_to == "school-a/rights-1"),
        "the police's confirmation is not recorded"
    );
    system.shutdown().await
}

/// The key-encryption keys the data keys in `KEYS` are wrapped by.
async fn wrapped_by(system: &System) -> Result<std::collections::BTreeSet<String>> {
    use futures_util::StreamExt as _;
    use prost::Message as _;
    let js = async_nats::jetstream::new(system.connect_as(users::INSPECTOR).await?);
    let kv = js.get_key_value(liaison_runtime::seal::BUCKET).await?;
    let mut names = kv.keys().await?;
    let mut keks = std::collections::BTreeSet::new();
    while let Some(name) = names.next().await {
        if let Some(value) = kv.get(name?).await? {
            keks.insert(liaison_proto::v1::WrappedKey::decode(value.as_ref())?.kek);
        }
    }
    Ok(keks)
}

/// The key-encryption key is rotated as the runbook says: a new key is made
/// current beside the old, the gateway re-wraps every data key under it at
/// start, the old key is removed — and what was shared before is still read
/// whole, while a data key never unwraps under a key it was not wrapped by.
#[tokio::test]
async fn a_rotated_key_encryption_key_rewraps_every_data_key_and_nothing_is_lost() -> Result<()> {
    use liaison_runtime::seal::KekFile;
    let store = tempfile::tempdir()?;
    let keys = tempfile::tempdir()?;
    let kek = keys.path().join("kek.toml");
    let (k1, k2) = (
        KekFile::generate("k1").map_err(anyhow::Error::msg)?,
        KekFile::generate("k2").map_err(anyhow::Error::msg)?,
    );
    let start = |current: &str, lines: &[&str]| {
        let text = format!("current = \"{current}\"\n[keys]\n{}\n", lines.join("\n"));
        let kek = kek.clone();
        let store = store.path().to_path_buf();
        async move {
            std::fs::write(&kek, text)?;
            let mut config = config();
            config.data.kek_file = kek;
            System::start(
                config,
                UpOptions {
                    inspector: true,
                    store_dir: Some(store),
                    ..UpOptions::default()
                },
            )
            .await
        }
    };
    let first = start("k1", &[&k1]).await?;
    let school = agency(&first, "school-a").await?;
    let verdict = school.send(&referral("school-a", "rotate-1")).await?;
    assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");
    disclosed(&first, "rotate-1", 2).await?;
    assert_eq!(wrapped_by(&first).await?, ["k1".to_owned()].into());
    first.shutdown().await?;

    // k2 made current beside k1: every data key re-wrapped under k2.
    let second = start("k2", &[&k1, &k2]).await?;
    eventually(
        "every data key under k2",
        Duration::from_secs(30),
        || async {
            let keks = wrapped_by(&second).await?;
            Ok((keks == ["k2".to_owned()].into()).then_some(()))
        },
    )
    .await?;
    second.shutdown().await?;

    // k1 removed: the referral shared under it is read whole.
    let third = start("k2", &[&k2]).await?;
    let police = agency(&third, "police").await?;
    let read = liaison_tests::inbox_exactly(&police, 1).await?;
    let subject = referral_of(&read[0])
        .and_then(|r| r.subject.clone())
        .unwrap_or_default();
    assert_eq!(subject.full_name, "Alex Example");
    third.shutdown().await
}
