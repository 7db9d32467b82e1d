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
