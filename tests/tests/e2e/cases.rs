//! The case record end to end over a real nats-server: the police open
//! cases, move them through their lifecycle, add participants (which is what
//! the gateway then uses for need to know), re-prioritise (every case that
//! moves is a PriorityChanged to the owner), ask partners for information
//! by a deadline (answers go back; the unanswered are reminded when it
//! passes), and agencies query the cases they take part in. The cases service
//! is killed mid-way and its KV state wiped and rebuilt from EVENTS: nothing
//! is lost and nothing raised twice.

use anyhow::{Result, bail};
use liaison_client::AgencyClient;
use liaison_core::system::Service;
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::verdict::Outcome;
use liaison_proto::v1::{
    CaseQuery, CaseReprioritised, CaseStatus, CaseStatusChanged, CaseUpdated, Classification,
    Decision, Delivery, Envelope, InformationProvided, InformationRequested, Operation,
    ParticipationChanged,
};
use liaison_runtime::users;
use liaison_tests::{agency, eventually, inbox_exactly, ledger_all, start};
use std::time::Duration;

fn builder(client: &AgencyClient, id: &str, case: &str) -> liaison_client::EnvelopeBuilder {
    client
        .envelope(format!("{}-officer", client.agency()))
        .id(id)
        .purpose("counter-terrorism")
        .legal_basis("DPA-2018-s35")
        .classification(Classification::OfficialSensitive)
        .case_id(case)
}

fn status(to: CaseStatus) -> Body {
    Body::CaseStatus(CaseStatusChanged {
        status: to as i32,
        unit: "ctp-north".into(),
        subject_tokens: vec!["st1:subject-token".into()],
        ..Default::default()
    })
}

async fn accepted(client: &AgencyClient, envelope: &Envelope) -> Result<()> {
    let verdict = client.send(envelope).await?;
    if verdict.outcome != Outcome::Accepted as i32 {
        bail!(
            "{} {} not accepted: {} {}",
            envelope.kind(),
            envelope.id,
            verdict.code,
            verdict.reason
        );
    }
    Ok(())
}

fn kinds(deliveries: &[Delivery]) -> Vec<String> {
    let mut kinds: Vec<String> = deliveries
        .iter()
        .filter_map(|d| d.envelope.as_ref().map(|e| e.kind().to_owned()))
        .collect();
    kinds.sort();
    kinds
}

/// Ranks of the police's live cases, top first, as the police see them.
async fn police_ranks(police: &AgencyClient) -> Result<Vec<(String, u32)>> {
    let answer = police
        .cases(
            "police-officer",
            &CaseQuery {
                status: 0,
                ..Default::default()
            },
        )
        .await?;
    Ok(answer
        .cases
        .into_iter()
        .filter(|c| c.rank > 0)
        .map(|c| (c.case_id, c.rank))
        .collect())
}

#[tokio::test]
async fn cases_move_through_their_lifecycle_with_priorities_requests_and_queries() -> Result<()> {
    let mut system = start().await?;
    let police = agency(&system, "police").await?;
    let council = agency(&system, "council").await?;
    let nhs = agency(&system, "nhs-trust").await?;
    let school = agency(&system, "school-a").await?;

    // The police open three cases; each enters the unit's list at the bottom.
    for case in ["CASE-A", "CASE-B", "CASE-C"] {
        let open = builder(&police, &format!("open-{case}"), case)
            .body(status(CaseStatus::Referred))
            .build()?;
        accepted(&police, &open).await?;
    }
    let opened = inbox_exactly(&police, 3).await?;
    assert_eq!(kinds(&opened), ["priority_changed"; 3]);
    // A move the lifecycle does not allow is refused before it is accepted.
    let skip = builder(&police, "skip", "CASE-A")
        .body(status(CaseStatus::UnderReview))
        .build()?;
    let verdict = eventually("the case record", Duration::from_secs(10), || async {
        let v = police.send(&skip).await?;
        Ok((v.code != "policy_denied" || !v.reason.contains("participates")).then_some(v))
    })
    .await?;
    assert_eq!(verdict.code, "invalid_field", "{}", verdict.reason);
    assert!(verdict.reason.contains("cannot move"), "{}", verdict.reason);

    for (id, to) in [
        ("a-triage", CaseStatus::Triage),
        ("a-open", CaseStatus::Open),
    ] {
        let envelope = builder(&police, id, "CASE-A").body(status(to)).build()?;
        eventually("the case to move", Duration::from_secs(10), || async {
            let v = police.send(&envelope).await?;
            Ok(
                (v.outcome == Outcome::Accepted as i32 || v.outcome == Outcome::Duplicate as i32)
                    .then_some(()),
            )
        })
        .await?;
    }
    // The council and the NHS trust join CASE-A: told, and from then on in need to know.
    let join = builder(&police, "a-join", "CASE-A")
        .body(Body::Participation(ParticipationChanged {
            added: vec!["council".into(), "nhs-trust".into()],
            removed: vec![],
        }))
        .build()?;
    accepted(&police, &join).await?;
    assert_eq!(kinds(&inbox_exactly(&council, 1).await?), ["participation"]);
    assert_eq!(kinds(&inbox_exactly(&nhs, 1).await?), ["participation"]);
    // A business partner may not join: no clause lets it receive case updates.
    let bad_join = builder(&police, "a-join-bsp", "CASE-A")
        .body(Body::Participation(ParticipationChanged {
            added: vec!["retail-bsp".into()],
            removed: vec![],
        }))
        .build()?;
    let verdict = police.send(&bad_join).await?;
    assert_eq!(verdict.code, "policy_denied", "{}", verdict.reason);
    // Now the council may send an update on CASE-A (need to know from the
    // participation the cases service keeps).
    let update = council
        .envelope("council-officer")
        .id("a-update")
        .purpose("safeguarding")
        .legal_basis("CTSA-2015-s36")
        .classification(Classification::OfficialSensitive)
        .case_id("CASE-A")
        .case_update(CaseUpdated {
            update_type: "contact".into(),
            summary: "Attended mentoring session".into(),
            ..Default::default()
        })
        .build()?;
    eventually(
        "the council to participate",
        Duration::from_secs(10),
        || async {
            let v = council.send(&update).await?;
            Ok((v.outcome == Outcome::Accepted as i32).then_some(()))
        },
    )
    .await?;

    // Re-prioritise: CASE-C to the top; all three move.
    let top = builder(&police, "c-top", "CASE-C")
        .body(Body::Reprioritisation(CaseReprioritised {
            rank: 1,
            reason_code: "weekly-review".into(),
        }))
        .build()?;
    accepted(&police, &top).await?;
    // The police got the update on CASE-A and the three moves.
    let moved = inbox_exactly(&police, 4).await?;
    assert_eq!(
        kinds(&moved),
        [
            "case_update",
            "priority_changed",
            "priority_changed",
            "priority_changed"
        ]
    );
    let ranks = eventually("the new ranks", Duration::from_secs(10), || async {
        let ranks = police_ranks(&police).await?;
        Ok((ranks.first().map(|r| r.0.as_str()) == Some("CASE-C")).then_some(ranks))
    })
    .await?;
    assert_eq!(
        ranks,
        [
            ("CASE-C".to_owned(), 1),
            ("CASE-A".to_owned(), 2),
            ("CASE-B".to_owned(), 3)
        ]
    );

    // The council sees only the case it takes part in; another case is
    // answered as if it did not exist.
    let seen = council
        .cases("council-officer", &CaseQuery::default())
        .await?;
    let ids: Vec<&str> = seen.cases.iter().map(|c| c.case_id.as_str()).collect();
    assert_eq!(ids, ["CASE-A"]);
    assert_eq!(
        seen.cases[0].participants,
        ["police", "council", "nhs-trust"]
    );
    let hidden = council
        .cases(
            "council-officer",
            &CaseQuery {
                case_id: "CASE-B".into(),
                ..Default::default()
            },
        )
        .await;
    assert!(
        hidden
            .as_ref()
            .err()
            .and_then(|e| e.refusal())
            .is_some_and(|r| r.code() == "unknown_case"),
        "{hidden:?}"
    );

    // An information request to the NHS trust and a school, due in 2 s: the
    // trust answers; the school does not, and is reminded with the police.
    let respond_by = liaison_core::time::unix_now() + 2;
    let ask = builder(&police, "a-ask", "CASE-A")
        .addressee(&liaison_core::AgencyId::parse("nhs-trust")?)
        .addressee(&liaison_core::AgencyId::parse("school-a")?)
        .body(Body::InformationRequest(InformationRequested {
            question: "Any recent contact?".into(),
            respond_by: Some(prost_types::Timestamp {
                seconds: i64::try_from(respond_by)?,
                nanos: 0,
            }),
        }))
        .build()?;
    accepted(&police, &ask).await?;
    // The trust also had the council's update on CASE-A (it participates).
    assert_eq!(
        kinds(&inbox_exactly(&nhs, 2).await?),
        ["case_update", "information_request"]
    );
    let answer = nhs
        .envelope("nhs-trust-officer")
        .id("a-answer")
        .purpose("safeguarding")
        .legal_basis("DPA-2018-sch1-p18")
        .classification(Classification::OfficialSensitive)
        .in_reply_to("a-ask")
        .body(Body::InformationResponse(InformationProvided {
            answer: "Seen in clinic last week".into(),
            health_notes: "Anxiety".into(),
            ..Default::default()
        }))
        .build()?;
    accepted(&nhs, &answer).await?;

    // Meanwhile the cases service crashes, and restarts from its KV state.
    system.kill_cases().await;
    system.start_cases().await?;

    let police_got = inbox_exactly(&police, 2).await?;
    assert_eq!(
        kinds(&police_got),
        ["information_response", "request_overdue"]
    );
    let answered =
        police_got.iter().find_map(
            |d| match d.envelope.as_ref().and_then(|e| e.body.as_ref()) {
                Some(Body::InformationResponse(a)) => Some(a.clone()),
                _ => None,
            },
        );
    // The police see the answer, not the health notes.
    assert_eq!(
        answered.map(|a| (a.answer, a.health_notes)),
        Some(("Seen in clinic last week".into(), String::new()))
    );
    let school_got = inbox_exactly(&school, 2).await?;
    assert_eq!(
        kinds(&school_got),
        ["information_request", "request_overdue"]
    );

    // The state is wiped: rebuilt from EVENTS, the same, and nothing raised twice.
    let before = police_ranks(&police).await?;
    system.stop_cases().await;
    let operator = async_nats::jetstream::new(system.connect_as(users::INSPECTOR).await?);
    operator.delete_key_value(Service::Cases.bucket()).await?;
    operator
        .create_key_value(liaison_runtime::provision::service_bucket(
            Service::Cases,
            1,
        ))
        .await?;
    system.start_cases().await?;
    // Rebuilt once the service has folded EVENTS to the end (not as soon as
    // the lists are as long: the re-prioritisation comes after the openings).
    system.wait_until_folded(Duration::from_secs(20)).await?;
    let after = police_ranks(&police).await?;
    assert_eq!(before, after);
    assert!(
        police
            .inbox(10, Duration::from_millis(800))
            .await?
            .is_empty()
    );
    assert!(
        school
            .inbox(10, Duration::from_millis(200))
            .await?
            .is_empty()
    );

    // Every change of a case is an alteration record; every query a consultation.
    system.wait_until_settled(Duration::from_secs(20)).await?;
    let (report, records) = ledger_all(&system).await?;
    assert!(report.intact(), "{report:?}");
    let alterations = records
        .iter()
        .filter(|r| r.service == "cases" && r.operation == Operation::Alteration as i32)
        .count();
    let consultations = records
        .iter()
        .filter(|r| r.operation == Operation::Consultation as i32 && r.kind == "case_query")
        .count();
    assert!(alterations >= 10, "{alterations} alteration records");
    assert!(consultations >= 4, "{consultations} consultation records");
    system.shutdown().await
}

/// DPA 2018 s.38: a school withdraws a referral it should not have sent;
/// every agency that received it is told, each confirms its erasure, and
/// the ledger holds the alteration and each erasure.
#[tokio::test]
async fn a_withdrawn_referral_reaches_every_recipient_and_each_erasure_is_recorded() -> Result<()> {
    use liaison_proto::v1::{CorrectionIssued, ErasureConfirmed, correction_issued};
    let system = start().await?;
    let school = agency(&system, "school-a").await?;
    let police = agency(&system, "police").await?;
    let council = agency(&system, "council").await?;
    let referral = liaison_tests::referral("school-a", "ref-wrong-child");
    accepted(&school, &referral).await?;
    inbox_exactly(&police, 1).await?;
    inbox_exactly(&council, 1).await?;
    let withdraw = school
        .envelope("school-a-dsl")
        .id("withdraw-1")
        .purpose("safeguarding")
        .legal_basis("DPA-2018-sch1-p18")
        .classification(Classification::OfficialSensitive)
        .in_reply_to("ref-wrong-child")
        .body(Body::Correction(CorrectionIssued {
            action: correction_issued::Action::Withdrawn as i32,
            reason_code: "wrong-person".into(),
            correction: "Referred in error: a different pupil".into(),
        }))
        .build()?;
    accepted(&school, &withdraw).await?;
    // Only the original sender may correct it.
    let by_police = Envelope {
        id: "withdraw-by-police".into(),
        sender_agency: "police".into(),
        author: "police-officer".into(),
        ..withdraw.clone()
    };
    assert_eq!(police.send(&by_police).await?.code, "policy_denied");
    for recipient in [&police, &council] {
        let got = inbox_exactly(recipient, 1).await?;
        assert_eq!(kinds(&got), ["correction"]);
        let confirm = recipient
            .envelope(format!("{}-officer", recipient.agency()))
            .id(format!("erased-{}", recipient.agency()))
            .purpose("safeguarding")
            .legal_basis("DPA-2018-sch1-p18")
            .classification(Classification::OfficialSensitive)
            .in_reply_to("withdraw-1")
            .body(Body::ErasureConfirmed(ErasureConfirmed {
                records_erased: 1,
            }))
            .build()?;
        accepted(recipient, &confirm).await?;
    }
    assert_eq!(
        kinds(&inbox_exactly(&school, 2).await?),
        ["erasure_confirmed", "erasure_confirmed"]
    );
    let (report, records) = liaison_tests::ledger(&system).await?;
    assert!(report.intact(), "{report:?}");
    let count = |op: Operation| {
        records
            .iter()
            .filter(|r| r.operation == op as i32 && r.decision == Decision::Accepted as i32)
            .count()
    };
    assert_eq!(count(Operation::Alteration), 1, "the withdrawal");
    assert_eq!(count(Operation::Erasure), 2, "one per recipient");
    let corrected: Vec<&str> = records
        .iter()
        .filter(|r| r.kind == "correction" && r.operation == Operation::Disclosure as i32)
        .flat_map(|r| r.recipients.iter().map(String::as_str))
        .collect();
    assert_eq!(corrected.len(), 2, "{corrected:?}");
    system.shutdown().await
}
