//! DPA 2018 s.62 end to end: every operation leaves exactly one ledger
//! record. One system goes through a little of everything — referrals
//! accepted, refused, delivered whole and redacted; a case opened and
//! changed (the cases service); two agencies referring one person (a linkage
//! COMBINATION); a protective-security alert, one partner acknowledging and
//! the other escalated (the alerts service); a referral withdrawn and its erasure confirmed; case
//! queries, one about a case not the agency's; auditors asking to verify, replay, export, prove and check
//! consistency, and one refused — then the operations are counted where
//! they happened (`liaison_tests::operations`) and compared with the
//! ledger's records, operation by operation, and copy by copy.

use anyhow::{Result, ensure};
use liaison_client::{AgencyClient, SendError};
use liaison_proto::v1::alert_issued::ThreatLevel;
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::verdict::Outcome;
use liaison_proto::v1::{
    CaseQuery, CaseStatus, CaseStatusChanged, Classification, CorrectionIssued, Decision, Envelope,
    ErasureConfirmed, Operation, ParticipationChanged, correction_issued,
};
use liaison_tests::alerts::{ack, alert, alert_row};
use liaison_tests::operations::{Tally, consult, count_records, performed, quiet, until_accepted};
use liaison_tests::{agency, config, ledger_all, referral, start_with};
use std::collections::BTreeSet;
use std::time::Duration;

/// An envelope about `case` from `client`.
fn about(client: &AgencyClient, id: &str, case: &str, body: Body) -> Result<Envelope> {
    Ok(client
        .envelope(format!("{}-officer", client.agency()))
        .id(id)
        .purpose("counter-terrorism")
        .legal_basis("DPA-2018-s35")
        .classification(Classification::OfficialSensitive)
        .case_id(case)
        .body(body)
        .build()?)
}

#[tokio::test]
async fn every_operation_leaves_exactly_one_record() -> Result<()> {
    let mut settings = config();
    settings.alerts.escalate_severe_secs = 2;
    settings.alerts.max_escalations = 1;
    let system = start_with(settings).await?;
    let school = agency(&system, "school-a").await?;
    let police = agency(&system, "police").await?;
    let council = agency(&system, "council").await?;
    let nhs = agency(&system, "nhs-trust").await?;
    let mut tally = Tally::default();

    // A referral: collected, delivered whole to the council and redacted
    // (no health notes) to the police.
    until_accepted(&school, &referral("school-a", "ops-ref-1"), &mut tally).await?;
    // Refused: bytes that are no envelope, and a correction by someone
    // else than the sender.
    let verdict = school
        .send_raw(
            b"\x0a\xff not an envelope".to_vec().into(),
            Some(&school.token("school-a-dsl")?),
        )
        .await?;
    ensure!(verdict.outcome == Outcome::Refused as i32, "{verdict:?}");
    tally.add(Operation::Collection, Decision::Refused, "gateway");
    let withdraw = school
        .envelope("school-a-dsl")
        .id("ops-withdraw")
        .purpose("safeguarding")
        .legal_basis("DPA-2018-sch1-p18")
        .classification(Classification::OfficialSensitive)
        .in_reply_to("ops-ref-1")
        .body(Body::Correction(CorrectionIssued {
            action: correction_issued::Action::Withdrawn as i32,
            reason_code: "wrong-person".into(),
            correction: "Referred in error".into(),
        }))
        .build()?;
    let by_police = Envelope {
        id: "ops-withdraw-by-police".into(),
        sender_agency: "police".into(),
        author: "police-officer".into(),
        ..withdraw.clone()
    };
    // (policy_denied; invalid_field if the referral has not reached the police yet)
    let verdict = police.send(&by_police).await?;
    ensure!(verdict.outcome == Outcome::Refused as i32, "{verdict:?}");
    tally.add(Operation::Collection, Decision::Refused, "gateway");

    // A case opened, moved on and joined (the cases service records each
    // change; its priority list raises events of its own).
    let open = CaseStatusChanged {
        status: CaseStatus::Referred as i32,
        unit: "ctp-north".into(),
        subject_tokens: vec!["tok-ops-case".into()],
        ..Default::default()
    };
    until_accepted(
        &police,
        &about(&police, "ops-open", "OPS-1", Body::CaseStatus(open.clone()))?,
        &mut tally,
    )
    .await?;
    let triage = CaseStatusChanged {
        status: CaseStatus::Triage as i32,
        ..open
    };
    until_accepted(
        &police,
        &about(&police, "ops-triage", "OPS-1", Body::CaseStatus(triage))?,
        &mut tally,
    )
    .await?;
    let join = ParticipationChanged {
        added: vec!["council".into()],
        removed: vec![],
    };
    until_accepted(
        &police,
        &about(&police, "ops-join", "OPS-1", Body::Participation(join))?,
        &mut tally,
    )
    .await?;

    // Two agencies refer one person: the linkage service combines them.
    for (client, id) in [(&school, "ops-dup-1"), (&nhs, "ops-dup-2")] {
        let mut envelope = referral(client.agency().as_str(), id);
        if let Some(Body::Referral(r)) = envelope.body.as_mut()
            && let Some(person) = r.subject.as_mut()
        {
            person.token = "tok-ops-duplicate".into();
        }
        until_accepted(client, &envelope, &mut tally).await?;
    }

    // A protective-security alert to business partners: retail acknowledges
    // (the alerts service counts it), transport does not and is escalated to.
    let retail = agency(&system, "retail-bsp").await?;
    let issued = alert(
        "ops-alert",
        ThreatLevel::Severe,
        &["retail", "transport"],
        "london",
    );
    until_accepted(&police, &issued, &mut tally).await?;
    until_accepted(
        &retail,
        &ack("retail-bsp", "ops-ack", &issued.id),
        &mut tally,
    )
    .await?;
    alert_row(&system, &issued.id, "the escalation", |r| {
        r.acknowledged == 1 && r.escalations == 1
    })
    .await?;

    // The first referral withdrawn (an alteration); each recipient confirms
    // its erasure (once the withdrawal has reached it).
    until_accepted(&school, &withdraw, &mut tally).await?;
    for recipient in [&police, &council] {
        let confirm = recipient
            .envelope(format!("{}-dpo", recipient.agency()))
            .id(format!("ops-erased-{}", recipient.agency()))
            .purpose("safeguarding")
            .legal_basis("DPA-2018-sch1-p18")
            .classification(Classification::OfficialSensitive)
            .in_reply_to("ops-withdraw")
            .body(Body::ErasureConfirmed(ErasureConfirmed {
                records_erased: 1,
            }))
            .build()?;
        until_accepted(recipient, &confirm, &mut tally).await?;
    }

    // Consultations: the police list their cases; auditors ask before they
    // read, one with a key that is not theirs.
    police
        .cases("police-officer", &CaseQuery::default())
        .await?;
    tally.add(Operation::Consultation, Decision::Accepted, "gateway");
    // …and the council asks about a case it takes part in none of: refused,
    // and recorded.
    let probe = CaseQuery {
        case_id: "OPS-NOT-THEIRS".into(),
        ..Default::default()
    };
    let refused = council.cases("council-officer", &probe).await;
    ensure!(matches!(refused, Err(SendError::Refused(_))), "{refused:?}");
    tally.add(Operation::Consultation, Decision::Refused, "gateway");
    for action in ["verify", "replay", "export", "prove", "consistency"] {
        ensure!(
            consult(
                &system,
                action,
                "deploy/audit/dev-auditor-keys/ig-officer.pem",
                &mut tally
            )
            .await?
        );
    }
    ensure!(
        !consult(
            &system,
            "replay",
            "deploy/agencies/dev-keys/school-a.pem",
            &mut tally
        )
        .await?
    );

    quiet(&system, Duration::from_secs(60)).await?;
    let (mut expected, deliveries) = performed(&system, &tally).await?;
    // The gateway's start: the policy set it took into force.
    *expected
        .entry(("policy_change".into(), "accepted".into(), "gateway".into()))
        .or_default() += 1;
    let (report, records) = ledger_all(&system).await?;
    ensure!(report.intact(), "{report:?}");
    assert_eq!(
        count_records(&records),
        expected,
        "records against operations"
    );

    // Copy by copy: each delivery is one disclosure record naming its
    // recipient and what was withheld (a redacted copy says so).
    let copies: BTreeSet<(String, String, Vec<i32>)> = deliveries
        .iter()
        .map(|d| {
            let id = d
                .envelope
                .as_ref()
                .map(|e| e.id.clone())
                .unwrap_or_default();
            (id, d.recipient.clone(), d.withheld_labels.clone())
        })
        .collect();
    let disclosed: BTreeSet<(String, String, Vec<i32>)> = records
        .iter()
        .filter(|r| r.operation == Operation::Disclosure as i32)
        .map(|r| {
            (
                r.envelope_id.clone(),
                r.recipients.join(","),
                r.withheld_labels.clone(),
            )
        })
        .collect();
    assert_eq!(disclosed, copies);
    ensure!(
        copies.iter().any(|(_, _, withheld)| !withheld.is_empty()),
        "no redacted copy"
    );
    ensure!(
        copies.iter().any(|(_, _, withheld)| withheld.is_empty()),
        "no whole copy"
    );
    // Every kind of operation came up.
    for operation in [
        "collection",
        "alteration",
        "consultation",
        "disclosure",
        "combination",
        "erasure",
    ] {
        ensure!(
            expected.keys().any(|(o, _, _)| o == operation),
            "no {operation}"
        );
    }
    system.shutdown().await
}
