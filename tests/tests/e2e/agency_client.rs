//! The agency client (`liaison-client`) against a whole running system:
//! receipts and typed refusals, local checks that send nothing, retries that
//! keep the envelope id (gateway down, agency rate-limited), catching up
//! after being offline, and explicit acknowledgement (a delivery not acked,
//! or nak'ed, comes again; an acked one never does).

use liaison_client::{
    AgencyClient, NatsOptions, Received, Refusal, RetryPolicy, SendError, TransportError,
};
use liaison_core::AgencyId;
use liaison_proto::v1::{CaseUpdated, Classification, Decision, Operation};
use liaison_runtime::users;
use liaison_tests::{
    agency, config, inbox_exactly, key_pem, ledger, referral, repo_root, start, start_with,
};
use std::time::{Duration, Instant};

/// Takes `n` deliveries without acknowledging them (each pull waits 200 ms
/// for the first), failing after 15 s.
async fn take(client: &AgencyClient, n: usize) -> anyhow::Result<Vec<Received>> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut taken = Vec::new();
    while taken.len() < n {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} took {} of {n} deliveries",
            client.agency(),
            taken.len()
        );
        taken.extend(
            client
                .next_batch(n - taken.len(), Duration::from_millis(200))
                .await?,
        );
    }
    Ok(taken)
}

#[tokio::test]
async fn submit_answers_receipts_and_a_typed_refusal_per_code() -> anyhow::Result<()> {
    let system = start().await?;
    let school = agency(&system, "school-a").await?;
    let council = agency(&system, "council").await?;

    let envelope = referral("school-a", "client-ref-1");
    let receipt = school.submit(&envelope).await?;
    assert_eq!(receipt.envelope_id, "client-ref-1");
    assert!(!receipt.duplicate);
    assert_eq!(receipt.recipients, ["council", "police"]);
    assert_eq!(receipt.policy_ids, ["ISA-EDU-01/send"]);
    let again = school.submit(&envelope).await?;
    assert!(again.duplicate, "{again:?}");

    // The council takes part in no case yet: need to know refuses its update.
    let update = council
        .envelope("council-dsl")
        .classification(Classification::OfficialSensitive)
        .purpose("safeguarding")
        .legal_basis("CTSA-2015-s36")
        .case_id("CASE-0007")
        .case_update(CaseUpdated {
            summary: "Home visit".into(),
            ..Default::default()
        })
        .build()?;
    let denied_id = update.id.clone();
    match council.submit(&update).await {
        Err(SendError::Refused(Refusal::PolicyDenied(reason))) => {
            assert!(reason.contains("council"), "{reason}");
        }
        other => panic!("expected policy_denied, got {other:?}"),
    }
    // A purpose outside the vocabulary: only the gateway knows it.
    let mut unknown_purpose = referral("school-a", "client-ref-2");
    unknown_purpose.purpose = "curiosity".into();
    let error = school.submit(&unknown_purpose).await.err();
    assert!(
        matches!(
            error,
            Some(SendError::Refused(Refusal::InvalidField(ref r))) if r.contains("purpose")
        ),
        "{error:?}"
    );

    // Found wrong locally: nothing is sent, nothing is audited.
    let mut no_basis = referral("school-a", "client-ref-3");
    no_basis.legal_basis.clear();
    let error = school.submit(&no_basis).await.err();
    assert!(
        matches!(error, Some(SendError::Invalid(ref e)) if e.field == "legal_basis"),
        "{error:?}"
    );
    let mut bad_id = referral("school-a", "client ref 4");
    bad_id.id = "client ref 4".into();
    let error = school.submit(&bad_id).await.err();
    assert!(
        matches!(error, Some(SendError::Invalid(ref e)) if e.field == "id"),
        "{error:?}"
    );

    let (report, records) = ledger(&system).await?;
    assert!(report.intact(), "{report:?}");
    let mut collections: Vec<(String, String)> = records
        .iter()
        .filter(|r| r.operation == Operation::Collection as i32)
        .map(|r| (r.envelope_id.clone(), r.code.clone()))
        .collect();
    collections.sort();
    let mut expected = vec![
        ("client-ref-1".to_owned(), String::new()),
        (denied_id, "policy_denied".to_owned()),
        ("client-ref-2".to_owned(), "invalid_field".to_owned()),
    ];
    expected.sort();
    assert_eq!(
        collections, expected,
        "the duplicate and the envelopes found wrong locally leave no collection record"
    );
    system.shutdown().await
}

#[tokio::test]
async fn retries_keep_the_id_and_give_up_at_the_deadline() -> anyhow::Result<()> {
    // school-b may send 1 envelope/s in bursts of 2.
    let dir = tempfile::tempdir()?;
    let registry = std::fs::read_to_string(repo_root().join("deploy/agencies/registry.toml"))?
        .replace(
            "name = \"Southgate College\"",
            "name = \"Southgate College\"\nrate_per_sec = 1\nburst = 2",
        );
    let path = dir.path().join("registry.toml");
    std::fs::write(&path, registry)?;
    let mut config = config();
    config.paths.registry = path;
    let mut system = start_with(config).await?;

    // Rate-limited: every envelope is accepted in the end, each under its one id.
    let school = agency(&system, "school-b").await?;
    let ids: Vec<String> = (0..4).map(|n| format!("paced-{n}")).collect();
    for id in &ids {
        let receipt = school.submit(&referral("school-b", id)).await?;
        assert!(!receipt.duplicate, "{receipt:?}");
    }
    let (_, records) = ledger(&system).await?;
    let limited: Vec<&str> = records
        .iter()
        .filter(|r| r.code == "rate_limited")
        .map(|r| r.envelope_id.as_str())
        .collect();
    // Refused before decoding, so the refusals carry no envelope id; the
    // accepted collections do, once each.
    assert!(!limited.is_empty(), "the burst of 2 was exceeded");
    let mut accepted: Vec<&str> = records
        .iter()
        .filter(|r| {
            r.operation == Operation::Collection as i32 && r.decision == Decision::Accepted as i32
        })
        .map(|r| r.envelope_id.as_str())
        .collect();
    accepted.sort();
    assert_eq!(accepted, ids, "each id accepted exactly once");

    // No gateway: retried until the deadline, then a retryable error.
    // (Agencies log in through a gateway: connected before it stops.)
    let police = agency(&system, "police").await?;
    let impatient = agency(&system, "school-a").await?.with_retry(RetryPolicy {
        first_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        deadline: Duration::from_millis(600),
    });
    system.stop_gateway().await;
    let envelope = referral("school-a", "while-down");
    let error = impatient.submit(&envelope).await.err();
    match &error {
        Some(SendError::GaveUp {
            envelope_id,
            attempts,
            last,
            ..
        }) => {
            assert_eq!(envelope_id, "while-down");
            assert!(*attempts > 1, "{error:?}");
            assert!(
                matches!(
                    **last,
                    SendError::Transport(
                        TransportError::NoResponders(_) | TransportError::Timeout(_)
                    )
                ),
                "{error:?}"
            );
        }
        other => panic!("expected to give up, got {other:?}"),
    }
    assert!(error.is_some_and(|e| e.is_retryable()));
    // Back up: the same envelope goes through, once.
    system.start_gateway().await?;
    let receipt = impatient
        .with_retry(RetryPolicy::for_up_to(Duration::from_secs(10)))
        .submit(&envelope)
        .await?;
    assert!(!receipt.duplicate);
    let delivered = inbox_exactly(&police, 5).await?;
    let while_down = delivered
        .iter()
        .filter(|d| d.envelope.as_ref().is_some_and(|e| e.id == "while-down"))
        .count();
    assert_eq!(while_down, 1);
    system.shutdown().await
}

#[tokio::test]
async fn an_offline_recipient_catches_up_and_acknowledges_explicitly() -> anyhow::Result<()> {
    let system = start().await?;
    let school = agency(&system, "school-a").await?;
    // The police are not connected while the school sends.
    for n in 0..3 {
        let receipt = school
            .submit(&referral("school-a", &format!("offline-{n}")))
            .await?;
        assert_eq!(receipt.recipients, ["council", "police"]);
    }
    let police = AgencyClient::connect_with(
        AgencyId::parse("police")?,
        liaison_core::tokens::Signer::from_pem(&key_pem("police")?, None)
            .map_err(anyhow::Error::msg)?,
        &system.config.gateway.audience,
        &NatsOptions::with_auth(system.url(), liaison_tests::nkey("police")),
    )
    .await?;

    let received = take(&police, 3).await?;
    let mut ids: Vec<&str> = received.iter().map(|r| r.envelope_id()).collect();
    ids.sort();
    assert_eq!(ids, ["offline-0", "offline-1", "offline-2"]);
    assert!(received.iter().all(|r| !r.is_redelivery()));
    // Numbered 1, 2, 3 in police's inbox: nothing missed.
    let mut gaps = liaison_client::inbox::Gaps::starting_after(0);
    for r in &received {
        gaps.saw(r.recipient_seq());
    }
    assert_eq!((gaps.through(), gaps.missing()), (3, vec![]));

    // Acknowledge the first; hand the second back; forget the third (a crash
    // between storing and acknowledging).
    received[0].ack().await?;
    received[1].nak().await?;
    let (acked, nakked, forgotten) = (
        received[0].envelope_id().to_owned(),
        received[1].envelope_id().to_owned(),
        received[2].envelope_id().to_owned(),
    );
    // The nak'ed one comes again at once, the forgotten one after the ack
    // wait (2 s); the acknowledged one never.
    for expected in [nakked, forgotten] {
        let again = take(&police, 1).await?;
        assert_eq!(
            (again[0].envelope_id(), again[0].is_redelivery()),
            (expected.as_str(), true),
            "{acked} was acknowledged and must not come again"
        );
        again[0].ack().await?;
    }
    // Everything acknowledged: nothing more, even after the ack wait (2 s).
    let operator = system.connect_as(users::INSPECTOR).await?;
    let police_id = AgencyId::parse("police")?;
    let backlog = liaison_runtime::inbox::ask_backlog(&operator, &police_id)
        .await
        .map_err(anyhow::Error::msg)?;
    assert_eq!((backlog.last, backlog.waiting), (3, 0), "{backlog:?}");
    inbox_exactly(&police, 0).await?;
    system.shutdown().await
}

#[tokio::test]
async fn tls_when_required_is_not_skipped_against_a_plain_server() -> anyhow::Result<()> {
    let system = start().await?;
    let council = AgencyId::parse("council")?;
    let signer = || {
        liaison_core::tokens::Signer::from_pem(&key_pem("council")?, None)
            .map_err(anyhow::Error::msg)
    };
    let plain = NatsOptions::with_auth(system.url(), liaison_tests::nkey("council"));
    let error = AgencyClient::connect_with(
        council.clone(),
        signer()?,
        "liaison-gateway",
        &plain.clone().require_tls(None),
    )
    .await
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(error.contains("cannot connect to NATS"), "{error}");
    let missing_ca = repo_root().join("no-such-ca.pem");
    let error = AgencyClient::connect_with(
        council.clone(),
        signer()?,
        "liaison-gateway",
        &plain.clone().require_tls(Some(missing_ca)),
    )
    .await
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        error.contains("root CA file") && error.contains("no-such-ca.pem"),
        "{error}"
    );
    // The same options without TLS connect.
    AgencyClient::connect_with(council, signer()?, "liaison-gateway", &plain).await?;
    system.shutdown().await
}
