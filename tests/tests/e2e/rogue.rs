//! A rogue agency or a curious insider gets nothing (issue 20): defects
//! first found from outside, each now refused by name.
//!
//! - A share whose point is to reach other agencies that none may receive
//!   is refused `no_recipient`, saying why — never answered accepted with
//!   no recipients (a school believed it had shared a safeguarding concern
//!   that reached no one).
//! - An agency may not send above its own clearance (`policy_denied`,
//!   naming it).
//!
//! Both doors answer alike (HTTPS: 422 and 403), the client library maps the
//! code, and each refusal is one ledger record.

use liaison_client::AgencyClient;
use liaison_client::Refusal as ClientRefusal;
use liaison_proto::v1::{Classification, Decision, Operation};
use liaison_tests::https::envelope_json;
use liaison_tests::{agency, assert_refused, https_client, inbox_exactly, ledger, referral, start};
use std::time::Duration;

#[tokio::test]
async fn a_share_no_one_may_receive_is_refused_and_no_agency_sends_above_its_clearance()
-> anyhow::Result<()> {
    let system = start().await?;
    let https = https_client(&system)?;
    let police = agency(&system, "police").await?;
    let school = agency(&system, "school-a").await?;

    // The police (SECRET) alert London's retailers at SECRET: every agency
    // that could receive it (the region's councils, its business partners)
    // is cleared below it.
    let mut secret = liaison_tests::alerts::alert(
        "secret-alert",
        liaison_proto::v1::alert_issued::ThreatLevel::Critical,
        &["retail"],
        "london",
    );
    secret.classification = Classification::Secret as i32;
    let verdict = police.send(&secret).await?;
    assert_refused(
        &verdict,
        "no_recipient",
        "cleared below its classification SECRET",
        "a SECRET alert nobody may receive",
    );
    assert!(verdict.recipients.is_empty(), "{verdict:?}");
    // The client library names it.
    let refused = police.submit(&secret).await;
    assert!(
        matches!(&refused, Err(liaison_client::SendError::Refused(ClientRefusal::NoRecipient(r))) if r.contains("SECRET")),
        "{refused:?}"
    );

    // A school refers under a caveat no candidate is registered for.
    let mut locsen = referral("school-a", "locsen-referral");
    locsen.handling_caveats = vec!["LOCSEN".into()];
    let verdict = school.send(&locsen).await?;
    assert_refused(
        &verdict,
        "no_recipient",
        "not registered for its caveats LOCSEN (council, nhs-trust, police",
        "a referral under a caveat nobody holds",
    );
    // The same over HTTPS: 422, the same code.
    let token = school.token("school-a-dsl")?;
    let reply = https
        .post_json(
            "/v1/agencies/school-a/envelopes",
            Some(&token),
            envelope_json(&referral_with_caveat("locsen-https")),
        )
        .await?;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (422, "no_recipient"),
        "{reply:?}"
    );

    // The school (OFFICIAL-SENSITIVE) may not send TOP SECRET at all.
    let mut top = referral("school-a", "top-secret-referral");
    top.classification = Classification::TopSecret as i32;
    let verdict = school.send(&top).await?;
    assert_refused(
        &verdict,
        "policy_denied",
        "school-a is cleared to OFFICIAL-SENSITIVE and may not send an envelope classified TOP-SECRET",
        "above its own clearance",
    );
    let reply = https
        .post_json(
            "/v1/agencies/school-a/envelopes",
            Some(&token),
            envelope_json(&top),
        )
        .await?;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (403, "policy_denied"),
        "{reply:?}"
    );

    // A share that can reach someone still does, and nothing refused was delivered.
    let verdict = school.send(&referral("school-a", "ordinary")).await?;
    assert_eq!(verdict.recipients, ["council", "police"], "{verdict:?}");
    let delivered = inbox_exactly(&police, 1).await?;
    assert_eq!(
        delivered[0].envelope.as_ref().map(|e| e.id.as_str()),
        Some("ordinary")
    );

    // Each refusal is on the record, with its code.
    system.wait_until_settled(Duration::from_secs(30)).await?;
    let (_, records) = ledger(&system).await?;
    let refused: Vec<(&str, &str)> = records
        .iter()
        .filter(|r| {
            r.operation == Operation::Collection as i32 && r.decision == Decision::Refused as i32
        })
        .map(|r| (r.envelope_id.as_str(), r.code.as_str()))
        .collect();
    for (id, code) in [
        ("secret-alert", "no_recipient"),
        ("locsen-referral", "no_recipient"),
        ("locsen-https", "no_recipient"),
        ("top-secret-referral", "policy_denied"),
    ] {
        assert!(refused.contains(&(id, code)), "{id} {code}: {refused:?}");
    }
    system.shutdown().await
}

fn referral_with_caveat(id: &str) -> liaison_proto::v1::Envelope {
    let mut envelope = referral("school-a", id);
    envelope.handling_caveats = vec!["LOCSEN".into()];
    envelope
}

/// Envelope-id squatting, as found from outside: school-a sent an envelope
/// with id X, and school-b's genuine referral with the same id X was then
/// answered DUPLICATE and never delivered. Ids are each sender's own now —
/// in EVENTS, DELIVERY, the ledger's records and the receipts — so both are
/// delivered and recorded; a reply names the one its sender took part in
/// (or SENDER/ID where it took part in both).
#[tokio::test]
async fn an_envelope_id_is_its_senders_own_and_cannot_be_squatted() -> anyhow::Result<()> {
    use liaison_proto::v1::envelope::Body;
    use liaison_proto::v1::verdict::Outcome;
    use liaison_proto::v1::{CorrectionIssued, ErasureConfirmed, correction_issued};

    let system = start().await?;
    let school_a = agency(&system, "school-a").await?;
    let school_b = agency(&system, "school-b").await?;
    let police = agency(&system, "police").await?;
    let probation = agency(&system, "probation").await?;

    let squat = school_a.send(&referral("school-a", "shared-id")).await?;
    assert_eq!(squat.outcome, Outcome::Accepted as i32, "{squat:?}");
    let genuine = school_b.send(&referral("school-b", "shared-id")).await?;
    assert_eq!(genuine.outcome, Outcome::Accepted as i32, "{genuine:?}");
    assert_eq!(genuine.recipients, ["council", "police"]);
    // Its own id again is still a duplicate, for its own sender.
    let again = school_b.send(&referral("school-b", "shared-id")).await?;
    assert_eq!(again.outcome, Outcome::Duplicate as i32, "{again:?}");
    // The police receive both, each from its own sender.
    let got = inbox_exactly(&police, 2).await?;
    let mut senders: Vec<&str> = got
        .iter()
        .filter_map(|d| d.envelope.as_ref())
        .filter(|e| e.id == "shared-id")
        .map(|e| e.sender_agency.as_str())
        .collect();
    senders.sort_unstable();
    assert_eq!(senders, ["school-a", "school-b"]);

    // A correction by school-b names its own envelope; it reaches that
    // envelope's recipients.
    let correction = |by: &AgencyClient, id: &str, in_reply_to: &str| {
        by.envelope(format!("{}-dsl", by.agency()))
            .id(id)
            .purpose("safeguarding")
            .legal_basis("DPA-2018-sch1-p18")
            .classification(Classification::OfficialSensitive)
            .in_reply_to(in_reply_to)
            .body(Body::Correction(CorrectionIssued {
                action: correction_issued::Action::Withdrawn as i32,
                reason_code: "wrong-person".into(),
                correction: "Referred in error".into(),
            }))
            .build()
    };
    let verdict = school_b
        .send(&correction(&school_b, "b-withdraws", "shared-id")?)
        .await?;
    assert_eq!(verdict.recipients, ["council", "police"], "{verdict:?}");
    // An agency that took part in neither may not answer it.
    let verdict = probation
        .send(&correction(&probation, "p-withdraws", "shared-id")?)
        .await?;
    assert_refused(
        &verdict,
        "policy_denied",
        "probation neither sent nor received an envelope \"shared-id\"",
        "answering an envelope it never saw",
    );
    // The police received both: their answer must say whose.
    let confirm = |in_reply_to: &str, id: &str| {
        police
            .envelope("police-officer")
            .id(id)
            .purpose("safeguarding")
            .legal_basis("DPA-2018-sch1-p18")
            .classification(Classification::OfficialSensitive)
            .in_reply_to(in_reply_to)
            .body(Body::ErasureConfirmed(ErasureConfirmed {
                records_erased: 1,
            }))
            .build()
    };
    inbox_exactly(&police, 1).await?;
    let verdict = police.send(&confirm("shared-id", "erased-1")?).await?;
    assert_refused(
        &verdict,
        "invalid_field",
        "give in_reply_to as SENDER/shared-id",
        "an answer to an id two senders used",
    );
    // Named with its sender, the answer goes to the right envelope.
    let verdict = police
        .send(&confirm("school-b/b-withdraws", "erased-2")?)
        .await?;
    assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");
    assert_eq!(verdict.recipients, ["school-b"], "{verdict:?}");

    // Both shares are on the record, each under its sender.
    system.wait_until_settled(Duration::from_secs(30)).await?;
    let (_, records) = ledger(&system).await?;
    let mut collected: Vec<&str> = records
        .iter()
        .filter(|r| {
            r.operation == Operation::Collection as i32
                && r.decision == Decision::Accepted as i32
                && r.envelope_id == "shared-id"
        })
        .map(|r| r.agency.as_str())
        .collect();
    collected.sort_unstable();
    assert_eq!(collected, ["school-a", "school-b"]);
    system.shutdown().await
}
