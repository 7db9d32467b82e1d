//! Every refusal at the gateway: the sender gets a clear reply naming what was
//! wrong, an audit record is written with the same code, and what was already
//! accepted is not affected.

use liaison_client::request;
use liaison_core::time::unix_now;
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::verdict::Outcome;
use liaison_proto::v1::{CaseUpdated, Decision};
use liaison_tests::{agency, assert_refused, inbox_exactly, ledger, referral, sign, start};
use prost::Message;
use serde_json::json;
use std::time::Duration;

fn claims(iss: &str, sub: &str, exp_offset: i64) -> serde_json::Value {
    let now = unix_now() as i64;
    json!({"iss": iss, "sub": sub, "aud": "liaison-gateway", "iat": now - 10,
           "nbf": now - 10, "exp": now + exp_offset, "jti": uuid::Uuid::new_v4().to_string()})
}

#[tokio::test]
async fn each_refusal_is_explained_audited_and_harms_nothing_accepted() -> anyhow::Result<()> {
    let system = start().await?;
    let school = agency(&system, "school-a").await?;
    let police = agency(&system, "police").await?;
    let timeout = Duration::from_secs(3);

    let good = referral("school-a", "ref-good");
    assert_eq!(school.send(&good).await?.outcome, Outcome::Accepted as i32);
    let good_bytes = good.encode_to_vec();
    let valid = |envelope_author: &str| claims("school-a", envelope_author, 60);

    // Signed with another agency's key (its kid is not school-a's).
    let forged = sign("police", &valid("school-a-dsl"))?;
    let mut other = referral("school-a", "ref-forged");
    let verdict = school
        .send_raw(other.encode_to_vec().into(), Some(&forged))
        .await?;
    assert_refused(&verdict, "invalid_token", "kid", "invalid_token");

    // Expired (beyond the allowed clock skew).
    let expired = sign("school-a", &claims("school-a", "school-a-dsl", -120))?;
    other.id = "ref-expired".into();
    let verdict = school
        .send_raw(other.encode_to_vec().into(), Some(&expired))
        .await?;
    assert_refused(&verdict, "token_expired", "expired", "token_expired");

    // No token at all.
    let verdict = school.send_raw(good_bytes.clone().into(), None).await?;
    assert_refused(&verdict, "missing_token", "Liaison-Token", "missing_token");

    // An agency the registry does not know (only an operator could even publish here).
    let token = sign("school-a", &claims("ghost-agency", "x", 60))?;
    let verdict = request(
        &liaison_tests::speaking_for(&system, "ghost-agency").await?,
        "liaison.ingress.ghost-agency.envelope".into(),
        good_bytes.clone().into(),
        Some(&token),
        timeout,
    )
    .await?;
    assert_refused(&verdict, "unknown_agency", "ghost-agency", "unknown_agency");

    // An agency id that is not a valid id.
    let verdict = request(
        &liaison_tests::speaking_for(&system, "School_A").await?,
        "liaison.ingress.School_A.envelope".into(),
        good_bytes.clone().into(),
        Some(&token),
        timeout,
    )
    .await?;
    assert_refused(
        &verdict,
        "invalid_agency_id",
        "School_A",
        "invalid_agency_id",
    );

    // Not a protobuf envelope.
    let token = school.token("school-a-dsl")?;
    let verdict = school
        .send_raw(vec![0xff, 0xff, 0xff, 0x01, 0x02].into(), Some(&token))
        .await?;
    assert_refused(
        &verdict,
        "malformed_envelope",
        "Envelope",
        "malformed_envelope",
    );

    // Larger than the limit: refused before decoding.
    let huge = vec![0u8; 70 * 1024];
    let verdict = school.send_raw(huge.into(), Some(&token)).await?;
    assert_refused(&verdict, "too_large", "65536", "too_large");

    // A required field missing.
    let mut no_purpose = referral("school-a", "ref-no-purpose");
    no_purpose.purpose.clear();
    assert_refused(
        &school.send(&no_purpose).await?,
        "invalid_field",
        "purpose",
        "invalid_field",
    );

    // Claiming to be another agency inside the envelope.
    let mut impostor = referral("school-a", "ref-impostor");
    impostor.sender_agency = "police".into();
    assert_refused(
        &school.send(&impostor).await?,
        "invalid_field",
        "sender_agency",
        "invalid_field",
    );

    // A share no information-sharing agreement permits.
    let mut update = referral("school-a", "ref-update");
    update.case_id = "CASE-1".into();
    update.body = Some(Body::CaseUpdate(CaseUpdated {
        summary: "not the school's to send".into(),
        ..Default::default()
    }));
    assert_refused(
        &school.send(&update).await?,
        "policy_denied",
        "case_update",
        "policy_denied",
    );

    // What was accepted before is delivered exactly once, and still is.
    let delivered = inbox_exactly(&police, 1).await?;
    assert_eq!(
        delivered[0].envelope.as_ref().map(|e| e.id.as_str()),
        Some("ref-good")
    );

    let (report, records) = ledger(&system).await?;
    assert!(report.intact(), "{report:?}");
    let refused: Vec<&str> = records
        .iter()
        .filter(|r| r.decision == Decision::Refused as i32)
        .map(|r| r.code.as_str())
        .collect();
    assert_eq!(
        refused,
        vec![
            "invalid_token",
            "token_expired",
            "missing_token",
            "unknown_agency",
            "invalid_agency_id",
            "malformed_envelope",
            "too_large",
            "invalid_field",
            "invalid_field",
            "policy_denied",
        ]
    );
    let accepted = records
        .iter()
        .filter(|r| r.decision == Decision::Accepted as i32)
        .count();
    let delivered = records
        .iter()
        .filter(|r| r.decision == Decision::Delivered as i32)
        .count();
    assert_eq!((accepted, delivered), (1, 2));
    let denial = records
        .iter()
        .find(|r| r.code == "policy_denied")
        .ok_or_else(|| anyhow::anyhow!("no denial record"))?;
    assert_eq!(
        (
            denial.agency.as_str(),
            denial.envelope_id.as_str(),
            denial.kind.as_str()
        ),
        ("school-a", "ref-update", "case_update")
    );
    system.shutdown().await
}
