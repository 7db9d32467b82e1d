//! The access policy at work over a real nats-server: need to know from case
//! participation, handling caveats and classification kept on every copy,
//! per-agency rate limits, and policy hot reload — a valid new set applied,
//! an invalid one refused with the old set kept, both in the audit ledger.

use liaison_core::AgencyId;
use liaison_core::participation::{Participation, Store};
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::verdict::Outcome;
use liaison_proto::v1::{
    AlertIssued, CaseUpdated, Classification, Decision, Envelope, Operation, Verdict,
};
use liaison_runtime::users;
use liaison_tests::{
    agency, config, inbox_exactly, ledger_all, referral, repo_root, start, start_with,
};
use std::path::Path;
use std::time::Duration;

fn case_update(sender: &str, id: &str, case: &str) -> Envelope {
    Envelope {
        purpose: "safeguarding".into(),
        legal_basis: "CTSA-2015-s36".into(),
        case_id: case.into(),
        author: format!("{sender}-dsl"),
        body: Some(Body::CaseUpdate(CaseUpdated {
            summary: "Risk re-assessed".into(),
            intelligence: "Contact with a known extremist".into(),
            ..Default::default()
        })),
        ..referral(sender, id)
    }
}

fn alert(id: &str, classification: Classification, caveats: &[&str]) -> Envelope {
    Envelope {
        purpose: "protective-security".into(),
        legal_basis: "DPA-2018-s35".into(),
        author: "police-dsl".into(),
        classification: classification as i32,
        handling_caveats: caveats.iter().map(|c| (*c).to_owned()).collect(),
        body: Some(Body::Alert(AlertIssued {
            headline: "Heighten protective security".into(),
            location: "Exampletown".into(),
            ..Default::default()
        })),
        ..referral("police", id)
    }
}

fn ids(list: &[&str]) -> Vec<AgencyId> {
    list.iter()
        .filter_map(|a| AgencyId::parse(a).ok())
        .collect()
}

fn recipients(verdict: &Verdict) -> Vec<&str> {
    verdict.recipients.iter().map(String::as_str).collect()
}

#[tokio::test]
async fn case_updates_go_only_to_participants_and_caveats_and_classification_hold()
-> anyhow::Result<()> {
    let system = start().await?;
    let operator = async_nats::jetstream::new(system.connect_as(users::INSPECTOR).await?);
    let store = Store::open(&operator).await?;
    store
        .put(
            "CASE-0042",
            &Participation {
                owner: ids(&["police"])[0].clone(),
                participants: ids(&["police", "probation", "nhs-trust"]),
                status: 0,
            },
        )
        .await?;
    let probation = agency(&system, "probation").await?;
    let council = agency(&system, "council").await?;
    let police = agency(&system, "police").await?;
    let nhs = agency(&system, "nhs-trust").await?;

    let update = case_update("probation", "upd-1", "CASE-0042");
    let verdict = probation.send(&update).await?;
    assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");
    assert_eq!(recipients(&verdict), ["nhs-trust", "police"]);

    // Addressed to the council, which the clause allows without participation.
    let mut addressed = case_update("probation", "upd-2", "CASE-0042");
    addressed.addressees = vec!["council".into()];
    let verdict = probation.send(&addressed).await?;
    assert_eq!(recipients(&verdict), ["council", "nhs-trust", "police"]);

    // The council does not participate: it may not send updates on the case,
    // nor on a case nobody has opened.
    for (id, case) in [("upd-3", "CASE-0042"), ("upd-4", "CASE-9999")] {
        let verdict = council.send(&case_update("council", id, case)).await?;
        assert_eq!(verdict.code, "policy_denied", "{verdict:?}");
    }

    // Participation changes take effect at once: the council joins.
    store
        .put(
            "CASE-0042",
            &Participation {
                owner: ids(&["police"])[0].clone(),
                participants: ids(&["police", "probation", "nhs-trust", "council"]),
                status: 0,
            },
        )
        .await?;
    let verdict = council
        .send(&case_update("council", "upd-5", "CASE-0042"))
        .await?;
    assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");

    // Nothing is down-classified: probation (OFFICIAL-SENSITIVE) may not
    // send a SECRET update at all, and the police's SECRET update reaches no
    // participant (all cleared below it), so it is refused, not accepted
    // with no recipients.
    let mut secret = case_update("probation", "upd-6", "CASE-0042");
    secret.classification = Classification::Secret as i32;
    let verdict = probation.send(&secret).await?;
    assert_eq!(verdict.code, "policy_denied", "{verdict:?}");
    assert!(
        verdict
            .reason
            .contains("probation is cleared to OFFICIAL-SENSITIVE"),
        "{verdict:?}"
    );
    let mut secret = case_update("police", "upd-7", "CASE-0042");
    secret.classification = Classification::Secret as i32;
    let verdict = police.send(&secret).await?;
    assert_eq!(verdict.code, "no_recipient", "{verdict:?}");
    assert!(
        verdict
            .reason
            .contains("cleared below its classification SECRET (council, nhs-trust, probation"),
        "{verdict:?}"
    );

    // A UK-EYES-ONLY alert reaches the council but no business partner.
    let verdict = police
        .send(&alert(
            "alert-1",
            Classification::Official,
            &["UK-EYES-ONLY"],
        ))
        .await?;
    assert_eq!(recipients(&verdict), ["council", "westshire-council"]);
    let verdict = police
        .send(&alert("alert-2", Classification::Official, &["NOFORN"]))
        .await?;
    assert_eq!(
        (
            verdict.code.as_str(),
            verdict.reason.contains("handling_caveats")
        ),
        ("invalid_field", true),
        "{verdict:?}"
    );

    let to_police = inbox_exactly(&police, 3).await?;
    for delivery in &to_police {
        let envelope = delivery.envelope.as_ref();
        let original = [&update, &addressed]
            .into_iter()
            .chain(std::iter::once(&case_update(
                "council",
                "upd-5",
                "CASE-0042",
            )))
            .find(|e| Some(e.id.as_str()) == envelope.map(|e| e.id.as_str()))
            .map(|e| e.classification);
        assert_eq!(envelope.map(|e| e.classification), original);
        assert!(
            delivery
                .policy_ids
                .iter()
                .any(|p| p.starts_with("ISA-CHANNEL-01"))
        );
    }
    let to_council = inbox_exactly(&council, 2).await?;
    let caveated = to_council
        .iter()
        .filter_map(|d| d.envelope.as_ref())
        .find(|e| e.id == "alert-1")
        .map(|e| e.handling_caveats.clone());
    assert_eq!(caveated, Some(vec!["UK-EYES-ONLY".to_owned()]));
    inbox_exactly(&nhs, 3).await?;
    system.shutdown().await
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let path = entry?.path();
        if path.is_file()
            && let Some(name) = path.file_name()
        {
            std::fs::copy(&path, to.join(name))?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_new_policy_set_is_applied_live_and_a_broken_one_is_refused() -> anyhow::Result<()> {
    let policies = tempfile::tempdir()?;
    copy_dir(&repo_root().join("deploy/policies"), policies.path())?;
    let mut config = config();
    config.paths.policies = policies.path().to_owned();
    config.gateway.policy_reload_secs = 1;
    let system = start_with(config).await?;
    let school = agency(&system, "school-a").await?;
    let first = school.send(&referral("school-a", "before")).await?;
    assert_eq!(recipients(&first), ["council", "police"]);

    // The partnership withdraws the police from ISA-EDU-01.
    let isa = policies.path().join("isa.cedar");
    let text = std::fs::read_to_string(&isa)?;
    let narrowed = text.replace(
        "(principal.kind == \"police\" || principal.kind == \"council\") &&\n  principal.areas",
        "principal.kind == \"council\" &&\n  principal.areas",
    );
    assert_ne!(narrowed, text, "the edit must change the policy");
    std::fs::write(&isa, &narrowed)?;
    let mut n = 0;
    let applied = liaison_tests::eventually("the new policy", Duration::from_secs(15), || {
        n += 1;
        let id = format!("during-{n}");
        let school = &school;
        async move {
            let verdict = school.send(&referral("school-a", &id)).await?;
            Ok((verdict.recipients == ["council"]).then_some(()))
        }
    })
    .await;
    applied?;

    // A broken file is refused; the narrowed set stays in force.
    std::fs::write(
        policies.path().join("broken.cedar"),
        "permit (principal, action, resource) when {",
    )?;
    let system_ref = &system;
    liaison_tests::eventually(
        "the broken set refused",
        Duration::from_secs(15),
        || async move {
            let (_, records) = ledger_all(system_ref).await?;
            Ok(records
                .iter()
                .any(|r| r.code == "policy_invalid")
                .then_some(()))
        },
    )
    .await?;
    // The watcher keeps looking (every second) at the same broken directory:
    // let it look twice more, to show the refusal is not recorded again. (A
    // wait, because what is checked is that nothing happens.)
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let after = school.send(&referral("school-a", "after-broken")).await?;
    assert_eq!(after.outcome, Outcome::Accepted as i32, "{after:?}");
    assert_eq!(recipients(&after), ["council"]);

    let (report, records) = ledger_all(&system).await?;
    assert!(report.intact(), "{report:?}");
    let changes: Vec<(i32, &str)> = records
        .iter()
        .filter(|r| r.operation == Operation::PolicyChange as i32)
        .map(|r| (r.decision, r.code.as_str()))
        .collect();
    assert_eq!(
        changes,
        [
            (Decision::Accepted as i32, "policy_applied"),
            (Decision::Accepted as i32, "policy_applied"),
            (Decision::Refused as i32, "policy_invalid"),
        ],
        "start, reload, refusal — the refusal recorded once"
    );
    let refusal = records
        .iter()
        .find(|r| r.code == "policy_invalid")
        .map(|r| r.reason.clone())
        .unwrap_or_default();
    assert!(refusal.contains("broken.cedar"), "{refusal}");
    system.shutdown().await
}

#[tokio::test]
async fn an_agency_over_its_rate_is_refused_and_others_are_not() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let registry = std::fs::read_to_string(repo_root().join("deploy/agencies/registry.toml"))?
        .replace(
            "name = \"Southgate College\"",
            "name = \"Southgate College\"\nrate_per_sec = 1\nburst = 3",
        );
    let path = dir.path().join("registry.toml");
    std::fs::write(&path, registry)?;
    let mut config = config();
    config.paths.registry = path;
    let system = start_with(config).await?;
    let flooding = agency(&system, "school-b").await?;
    let other = agency(&system, "school-a").await?;
    let mut codes = Vec::new();
    for n in 0..6 {
        let verdict = flooding
            .send(&referral("school-b", &format!("flood-{n}")))
            .await?;
        codes.push(verdict.code);
    }
    assert_eq!(
        codes,
        ["", "", "", "rate_limited", "rate_limited", "rate_limited"]
    );
    let verdict = other.send(&referral("school-a", "calm")).await?;
    assert_eq!(verdict.outcome, Outcome::Accepted as i32);
    // Retrying with the same id after the bucket refills is accepted.
    let verdict = flooding
        .send_until_answered(&referral("school-b", "flood-3"), Duration::from_secs(10))
        .await?;
    assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");
    let (_, records) = ledger_all(&system).await?;
    // Every refusal audited (the retries above may add some), all of school-b,
    // refused before the envelope was even decoded.
    let limited: Vec<_> = records
        .iter()
        .filter(|r| r.code == "rate_limited")
        .collect();
    assert!(limited.len() >= 3, "{limited:#?}");
    assert!(
        limited
            .iter()
            .all(|r| r.agency == "school-b" && r.envelope_id.is_empty())
    );
    system.shutdown().await
}

#[tokio::test]
async fn nats_headers_a_sender_adds_do_not_reach_jetstream() -> anyhow::Result<()> {
    use prost::Message as _;
    let system = start().await?;
    let school = agency(&system, "school-a").await?;
    let police = agency(&system, "police").await?;
    // The school's own connection, used by hand.
    let raw = school.nats().clone();
    // Headers that would steer JetStream if the gateway passed them on: a
    // de-duplication id shared by two different envelopes, and an expected
    // stream sequence that would make the store fail.
    for id in ["hdr-1", "hdr-2"] {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            liaison_core::subjects::TOKEN_HEADER,
            school.token("school-a-dsl")?.as_str(),
        );
        headers.insert("Nats-Msg-Id", "same-for-both");
        headers.insert("Nats-Expected-Last-Sequence", "999999");
        let reply = raw
            .request_with_headers(
                liaison_core::subjects::ingress(school.agency()),
                headers,
                referral("school-a", id).encode_to_vec().into(),
            )
            .await?;
        let verdict = Verdict::decode(reply.payload)?;
        assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");
    }
    let delivered = inbox_exactly(&police, 2).await?;
    let mut ids: Vec<String> = delivered
        .iter()
        .filter_map(|d| d.envelope.as_ref().map(|e| e.id.clone()))
        .collect();
    ids.sort();
    assert_eq!(ids, ["hdr-1", "hdr-2"]);
    system.shutdown().await
}
