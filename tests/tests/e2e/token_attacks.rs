//! The token attack suite, end to end: every hostile token of
//! [`liaison_tests::attacks`] sent on school-a's ingress over a real
//! nats-server is refused with its code and reason, nothing is delivered, and
//! each refusal is in the audit ledger with the reason the sender was given.
//! A replayed `jti` is refused too; the same token used again is not a replay.

use liaison_proto::v1::Decision;
use liaison_proto::v1::verdict::Outcome;
use liaison_tests::attacks::{self, valid_claims};
use liaison_tests::{agency, assert_refused, inbox_exactly, ledger, referral, sign, start};
use prost::Message as _;

#[tokio::test]
async fn no_hostile_token_is_accepted_and_each_refusal_is_audited() -> anyhow::Result<()> {
    let system = start().await?;
    let school = agency(&system, "school-a").await?;
    let police = agency(&system, "police").await?;
    let attacks = attacks::all()?;
    let mut expected = Vec::new();
    for (n, attack) in attacks.iter().enumerate() {
        let envelope = referral("school-a", &format!("attack-{n:02}"));
        let verdict = school
            .send_raw(envelope.encode_to_vec().into(), Some(&attack.token))
            .await?;
        assert_refused(&verdict, attack.code, attack.mentions, attack.name);
        expected.push((verdict.code.clone(), verdict.reason.clone()));
    }

    // jti replay: a second, different token reusing an accepted token's jti.
    let first_claims = valid_claims();
    let first = sign("school-a", &first_claims)?;
    let envelope = referral("school-a", "jti-first");
    let verdict = school
        .send_raw(envelope.encode_to_vec().into(), Some(&first))
        .await?;
    assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");
    // The same token again is fine (a token lives for its lifetime) ...
    let again = referral("school-a", "jti-again");
    let verdict = school
        .send_raw(again.encode_to_vec().into(), Some(&first))
        .await?;
    assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");
    // ... but another token with its jti is a replay.
    let mut replay_claims = first_claims.clone();
    replay_claims["iat"] = serde_json::json!(first_claims["iat"].as_u64().unwrap_or(0) + 1);
    let replay = sign("school-a", &replay_claims)?;
    let verdict = school
        .send_raw(
            referral("school-a", "jti-replay").encode_to_vec().into(),
            Some(&replay),
        )
        .await?;
    assert_refused(&verdict, "token_replayed", "jti", "replayed jti");
    expected.push((verdict.code.clone(), verdict.reason.clone()));

    // Only the two genuine envelopes reached the police.
    let delivered = inbox_exactly(&police, 2).await?;
    // Copies of different envelopes may arrive in either order (the router
    // delivers events side by side; each copy carries its accepted_at).
    let mut ids: Vec<&str> = delivered
        .iter()
        .filter_map(|d| d.envelope.as_ref().map(|e| e.id.as_str()))
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["jti-again", "jti-first"]);

    let (report, records) = ledger(&system).await?;
    assert!(report.intact(), "{report:?}");
    let audited: Vec<(String, String)> = records
        .iter()
        .filter(|r| r.decision == Decision::Refused as i32)
        .map(|r| (r.code.clone(), r.reason.clone()))
        .collect();
    assert_eq!(audited, expected, "every refusal audited with its reason");
    assert!(
        records
            .iter()
            .filter(|r| r.decision == Decision::Refused as i32)
            .all(|r| r.agency == "school-a"),
        "refusals are attributed to the subject's agency"
    );
    system.shutdown().await
}
