//! Live membership (docs/decisions/0020-live-membership.md): a named
//! operator suspends an agency with a signed request; at once it is
//! refused `agency_suspended` at both doors — sending, and reading its
//! inbox — while copies made for it are held; resumed, it reads them. Every
//! change, and every refused request, is a ledger record; requests without
//! an operator's valid token are refused with what was wrong.

use liaison_core::subjects;
use liaison_proto::v1::verdict::Outcome;
use liaison_proto::v1::{Decision, Operation};
use liaison_runtime::users;
use liaison_system::system::System;
use liaison_tests::{agency, assert_refused, https_client, ledger_all, referral, repo_root, start};
use std::time::{Duration, Instant};

/// A token of `operator` signed with the key at `key` (under the repository).
pub(crate) fn operator_token(operator: &str, key: &str) -> anyhow::Result<String> {
    let pem = std::fs::read_to_string(repo_root().join(key))?;
    let signer = liaison_core::tokens::Signer::from_pem(&pem, None).map_err(anyhow::Error::msg)?;
    signer
        .mint(
            operator,
            operator,
            "liaison-admin",
            liaison_core::time::unix_now(),
            120,
        )
        .map_err(anyhow::Error::msg)
}

/// Asks the gateways for a membership change; their answer.
pub(crate) async fn change(
    system: &System,
    token: Option<&str>,
    body: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let operator = system.connect_as(users::INSPECTOR).await?;
    let mut headers = async_nats::HeaderMap::new();
    if let Some(token) = token {
        headers.insert(subjects::TOKEN_HEADER, token);
    }
    let reply = operator
        .request_with_headers(subjects::ADMIN_AGENCIES, headers, body.to_string().into())
        .await?;
    Ok(serde_json::from_slice(&reply.payload)?)
}

pub(crate) const DUTY_KEY: &str = "deploy/operators/dev-operator-keys/duty-officer.pem";

#[tokio::test]
async fn a_suspended_agency_is_refused_at_both_doors_and_its_copies_held_until_resumed()
-> anyhow::Result<()> {
    let system = start().await?;
    let https = https_client(&system)?;
    let police = agency(&system, "police").await?;
    let school = agency(&system, "school-a").await?;
    let token = operator_token("duty-officer", DUTY_KEY)?;

    let asked = Instant::now();
    let answer = change(
        &system,
        Some(&token),
        serde_json::json!({"action": "suspend", "agency": "police", "reason": "signing key reported lost"}),
    )
    .await?;
    assert_eq!(answer["ok"], true, "{answer}");
    // Its open NATS connection is closed, and it cannot log in again.
    let closed = liaison_tests::eventually(
        "the police's connection closed",
        Duration::from_secs(1),
        || async {
            Ok(
                (police.nats().connection_state() != async_nats::connection::State::Connected)
                    .then_some(()),
            )
        },
    )
    .await;
    assert!(closed.is_ok(), "{closed:?} after {:?}", asked.elapsed());
    let login = liaison_tests::agency_once(&system, "police").await;
    assert!(
        login
            .as_ref()
            .is_err_and(|e| format!("{e:#}").contains("uthorization")),
        "a suspended agency logging in: {:?}",
        login.map(|_| ())
    );
    // Whatever still reaches its ingress (sent through another connection)
    // is refused at once.
    let stray = liaison_client::AgencyClient::new(
        liaison_tests::speaking_for(&system, "police").await?,
        liaison_core::AgencyId::parse("police")?,
        liaison_core::tokens::Signer::from_pem(&liaison_tests::key_pem("police")?, None)
            .map_err(anyhow::Error::msg)?,
        &system.config.gateway.audience,
    );
    let verdict = stray.send(&referral("police", "while-suspended")).await?;
    let took = asked.elapsed();
    assert_refused(
        &verdict,
        "agency_suspended",
        "signing key reported lost",
        "a suspended agency sending",
    );
    assert!(took < Duration::from_secs(1), "{took:?}");
    // Copies made for it are held: the school's referral is accepted and
    // routed, but the police's inbox is refused, over NATS and HTTPS.
    let verdict = school.send(&referral("school-a", "held-copy")).await?;
    assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");
    let read = stray.next_batch(10, Duration::from_millis(200)).await;
    assert!(
        read.as_ref()
            .is_err_and(|e| e.to_string().contains("agency_suspended")),
        "{read:?}"
    );
    let bearer = format!("Bearer {}", police.token("police-analyst")?);
    let reply = https
        .request(
            "GET",
            "/v1/agencies/police/inbox?max=10",
            &[("authorization", &bearer)],
            "",
        )
        .await?;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert!(
        reply.json()?.to_string().contains("agency_suspended"),
        "{reply:?}"
    );

    // Resumed: it sends again and reads the copy held for it.
    let answer = change(
        &system,
        Some(&token),
        serde_json::json!({"action": "resume", "agency": "police", "reason": "new key registered"}),
    )
    .await?;
    assert_eq!(answer["ok"], true, "{answer}");
    let police = agency(&system, "police").await?;
    // (A referral is not the police's to send under this basis: what
    // matters is that the refusal is the policy's again, not suspension.)
    let verdict = police.send(&referral("police", "after-resume")).await?;
    assert_ne!(verdict.code, "agency_suspended", "{verdict:?}");
    let held = liaison_tests::eventually("the held copy", Duration::from_secs(10), || async {
        let batch = police.next_batch(10, Duration::from_millis(200)).await?;
        police.ack_all(&batch).await?;
        Ok(batch
            .iter()
            .any(|r| r.envelope_id() == "held-copy")
            .then_some(()))
    })
    .await;
    assert!(held.is_ok(), "{held:?}");

    // Requests that are not an operator's: refused, each saying why.
    let school_key = operator_token("school-a", "deploy/agencies/dev-keys/school-a.pem")?;
    for (token, body, says) in [
        (
            None,
            serde_json::json!({"action": "suspend", "agency": "council", "reason": "x"}),
            "no operator token",
        ),
        (
            Some(school_key.as_str()),
            serde_json::json!({"action": "suspend", "agency": "council", "reason": "x"}),
            "operator token refused",
        ),
        (
            Some(token.as_str()),
            serde_json::json!({"action": "suspend", "agency": "nobody", "reason": "x"}),
            "not a registered agency",
        ),
        (
            Some(token.as_str()),
            serde_json::json!({"action": "delete", "agency": "council", "reason": "x"}),
            "give one of suspend, resume",
        ),
        (
            Some(token.as_str()),
            serde_json::json!({"action": "suspend", "agency": "council", "reason": " "}),
            "give a reason",
        ),
        (
            Some(token.as_str()),
            serde_json::json!({"action": "suspend", "agency": "council"}),
            "the request must be",
        ),
    ] {
        let answer = change(&system, token, body).await?;
        assert_eq!(answer["ok"], false, "{answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{says}: {error}");
    }
    // The council was never suspended.
    let council = agency(&system, "council").await?;
    let verdict = council
        .send(&liaison_tests::referral("council", "council-still-in"))
        .await?;
    assert_ne!(verdict.code, "agency_suspended", "{verdict:?}");

    // The ledger: both changes, by the duty officer, with their reasons;
    // and the six refused requests.
    let (report, records) = ledger_all(&system).await?;
    assert!(report.intact(), "{report:?}");
    let changes: Vec<(&str, &str, &str, &str)> = records
        .iter()
        .filter(|r| {
            r.operation == Operation::MembershipChange as i32
                && r.decision == Decision::Accepted as i32
        })
        .map(|r| {
            (
                r.agency.as_str(),
                r.code.as_str(),
                r.author.as_str(),
                r.reason.as_str(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            (
                "police",
                "agency_suspended",
                "duty-officer",
                "signing key reported lost"
            ),
            (
                "police",
                "agency_resumed",
                "duty-officer",
                "new key registered"
            ),
        ]
    );
    let refused = records
        .iter()
        .filter(|r| {
            r.operation == Operation::MembershipChange as i32
                && r.decision == Decision::Refused as i32
        })
        .count();
    assert_eq!(refused, 6);
    system.shutdown().await
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_once_cached_or_not_and_the_other_keys_still_work()
-> anyhow::Result<()> {
    let system = start().await?;
    let police = agency(&system, "police").await?;
    // A token verified (and cached) before the revocation.
    let verdict = police
        .send(&referral("police", "before-revocation"))
        .await?;
    assert_ne!(verdict.code, "bad_signature", "{verdict:?}");
    let registry = liaison_runtime::registry::Registry::load(
        &repo_root().join("deploy/agencies/registry.toml"),
    )?;
    let keys = &registry
        .get(&liaison_core::AgencyId::parse("police")?)
        .ok_or_else(|| anyhow::anyhow!("police"))?
        .keys;
    let eddsa = keys
        .iter()
        .find(|k| k.alg == liaison_core::tokens::KeyAlg::EdDSA)
        .ok_or_else(|| anyhow::anyhow!("an EdDSA key"))?
        .key_id()
        .map_err(anyhow::Error::msg)?;
    let token = operator_token("duty-officer", DUTY_KEY)?;
    let answer = change(
        &system,
        Some(&token),
        serde_json::json!({"action": "revoke", "agency": "police", "kid": eddsa, "reason": "laptop stolen"}),
    )
    .await?;
    assert_eq!(answer["ok"], true, "{answer}");
    // The same client, its token cached by the gateway: refused now.
    let verdict = police.send(&referral("police", "after-revocation")).await?;
    assert_refused(
        &verdict,
        "bad_signature",
        "laptop stolen",
        "a token of a revoked key",
    );
    assert!(verdict.reason.contains(&eddsa), "{verdict:?}");
    // The police's other key (ES256) is not revoked.
    let es256 = liaison_core::tokens::Signer::from_pem(
        &std::fs::read_to_string(repo_root().join("deploy/agencies/dev-keys/police-es256.pem"))?,
        None,
    )
    .map_err(anyhow::Error::msg)?
    .mint(
        "police",
        "police-analyst",
        "liaison-gateway",
        liaison_core::time::unix_now(),
        120,
    )
    .map_err(anyhow::Error::msg)?;
    let mut envelope = referral("police", "other-key");
    envelope.author = "police-analyst".into();
    let verdict = police
        .send_raw(
            prost::Message::encode_to_vec(&envelope).into(),
            Some(&es256),
        )
        .await?;
    assert_ne!(verdict.code, "bad_signature", "{verdict:?}");
    // A key that is not the agency's is refused, saying which are.
    let answer = change(
        &system,
        Some(&token),
        serde_json::json!({"action": "revoke", "agency": "police", "kid": "not-a-key", "reason": "x"}),
    )
    .await?;
    assert_eq!(answer["ok"], false, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("not a registered key") && e.contains(&eddsa)),
        "{answer}"
    );
    system.shutdown().await
}
