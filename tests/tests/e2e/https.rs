//! The gateway's HTTPS door, end to end over real TLS with certificates made
//! at test time: an envelope sent over HTTPS takes the NATS door's path and
//! reaches its recipients, who read their inboxes over HTTPS and acknowledge
//! with ack ids one agency cannot use for another; the OpenAPI document
//! follows the code. Refusals: `https_refusals.rs`; TLS: `https_tls.rs`.

use base64::Engine as _;
use liaison_gateway::refusal::Refusal;
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::verdict::Outcome;
use liaison_proto::v1::{Delivery, Operation};
use liaison_tests::https::{Https, envelope_json};
use liaison_tests::{agency, https_client, inbox_exactly, ledger, referral, start};
use prost::Message as _;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Reads `agency`'s inbox over HTTPS until `n` deliveries came (none
/// acknowledged), polling with a deadline.
async fn read_inbox(
    https: &Https,
    agency: &str,
    token: &str,
    n: usize,
) -> anyhow::Result<Vec<Value>> {
    let path = format!("/v1/agencies/{agency}/inbox?max=10&wait_ms=500");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut got: Vec<Value> = Vec::new();
    while got.len() < n {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{agency} got {} of {n} deliveries",
            got.len()
        );
        let reply = https.get(&path, Some(token)).await?;
        anyhow::ensure!(reply.status == 200, "{reply:?}");
        got.extend(
            reply.json()?["deliveries"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
    }
    anyhow::ensure!(got.len() == n, "{} deliveries, expected {n}", got.len());
    Ok(got)
}

fn ack_body(ids: &[&str]) -> String {
    json!({ "ack_ids": ids }).to_string()
}

#[tokio::test]
async fn a_referral_sent_over_https_is_read_and_acknowledged_over_https() -> anyhow::Result<()> {
    let system = start().await?;
    let https = https_client(&system)?;
    let school = agency(&system, "school-a").await?;
    let police = agency(&system, "police").await?;
    let council = agency(&system, "council").await?;
    let sent = referral("school-a", "ref-https-1");
    let path = "/v1/agencies/school-a/envelopes";

    let reply = https
        .post_json(
            path,
            Some(&school.token("school-a-dsl")?),
            envelope_json(&sent),
        )
        .await?;
    assert_eq!(reply.status, 201, "{reply:?}");
    let verdict = reply.json()?;
    assert_eq!(verdict["outcome"], "OUTCOME_ACCEPTED");
    assert_eq!(verdict["envelopeId"], "ref-https-1");
    assert_eq!(verdict["recipients"], json!(["council", "police"]));

    // The police read their copy over HTTPS, redacted as over NATS.
    let token = police.token("police-analyst")?;
    let first = read_inbox(&https, "police", &token, 1).await?;
    let delivery: Delivery =
        liaison_proto::json::from_json("Delivery", &first[0]["delivery"].to_string())?;
    let envelope = delivery.envelope.clone().unwrap_or_default();
    assert_eq!(
        (envelope.id.as_str(), delivery.recipient.as_str()),
        ("ref-https-1", "police")
    );
    let Some(Body::Referral(r)) = envelope.body else {
        anyhow::bail!("not a referral: {delivery:?}");
    };
    assert_eq!(r.concern, "Shared extremist material");
    assert_eq!(r.health_notes, "", "the police may not see health notes");
    assert!(
        delivery
            .policy_ids
            .contains(&"ISA-EDU-01/receive".to_owned())
    );
    assert_eq!(
        first[0]["delivery"]["withheldLabels"][0],
        "DATA_LABEL_HEALTH"
    );

    // Not acknowledged: handed out again once the ack wait is over.
    let again = read_inbox(&https, "police", &token, 1).await?;
    assert_eq!(again[0]["delivery"]["envelope"]["id"], "ref-https-1");
    let ack_id = again[0]["ack_id"].as_str().unwrap_or_default();
    let reply = https
        .post_json(
            "/v1/agencies/police/inbox/ack",
            Some(&token),
            ack_body(&[ack_id]),
        )
        .await?;
    assert_eq!((reply.status, reply.json()?), (200, json!({ "acked": 1 })));
    // Acknowledged: nothing comes back, over HTTPS or NATS, past the ack wait (2 s).
    let later = https
        .get(
            "/v1/agencies/police/inbox?max=10&wait_ms=3000",
            Some(&token),
        )
        .await?;
    assert_eq!(later.json()?["deliveries"], json!([]), "{later:?}");
    inbox_exactly(&police, 0).await?;
    inbox_exactly(&council, 1).await?;

    // The same envelope again: a duplicate, delivered once.
    let reply = https
        .post_json(
            path,
            Some(&school.token("school-a-dsl")?),
            envelope_json(&sent),
        )
        .await?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()?["outcome"], "OUTCOME_DUPLICATE");
    // Binary protobuf is accepted too.
    let binary = referral("school-a", "ref-https-binary").encode_to_vec();
    let bearer = format!("Bearer {}", school.token("school-a-dsl")?);
    let reply = https
        .request(
            "POST",
            path,
            &[
                ("content-type", "application/x-protobuf"),
                ("authorization", &bearer),
            ],
            binary,
        )
        .await?;
    assert_eq!(reply.status, 201, "{reply:?}");

    let (report, records) = ledger(&system).await?;
    assert!(report.intact(), "{report:?}");
    let collections: Vec<&str> = records
        .iter()
        .filter(|r| r.operation == Operation::Collection as i32)
        .map(|r| r.envelope_id.as_str())
        .collect();
    assert_eq!(collections, vec!["ref-https-1", "ref-https-binary"]);
    system.shutdown().await
}

#[tokio::test]
async fn an_ack_id_of_one_agency_acknowledges_nothing_for_another() -> anyhow::Result<()> {
    let system = start().await?;
    let https = https_client(&system)?;
    let school = agency(&system, "school-a").await?;
    let (police, council) = (
        agency(&system, "police").await?,
        agency(&system, "council").await?,
    );
    assert_eq!(
        school
            .send(&referral("school-a", "ref-acks"))
            .await?
            .outcome,
        Outcome::Accepted as i32
    );
    let police_token = police.token("police-analyst")?;
    let council_token = council.token("council-officer")?;
    let to_police = read_inbox(&https, "police", &police_token, 1).await?;
    let to_council = read_inbox(&https, "council", &council_token, 1).await?;
    let police_ack = to_police[0]["ack_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let council_ack = to_council[0]["ack_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // The council presents the police's ack id, alone or among its own.
    for ids in [
        vec![police_ack.as_str()],
        vec![council_ack.as_str(), police_ack.as_str()],
    ] {
        let reply = https
            .post_json(
                "/v1/agencies/council/inbox/ack",
                Some(&council_token),
                ack_body(&ids),
            )
            .await?;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (400, "invalid_ack_id"),
            "{reply:?}"
        );
    }
    // ... or on the police's path, with its own token.
    let reply = https
        .post_json(
            "/v1/agencies/police/inbox/ack",
            Some(&council_token),
            ack_body(&[&police_ack]),
        )
        .await?;
    assert_eq!(reply.status, 401, "{reply:?}");
    // A forged subject of the police consumer is no ack id either.
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode("$JS.ACK.DELIVERY.deliver-police.>");
    let reply = https
        .post_json(
            "/v1/agencies/police/inbox/ack",
            Some(&police_token),
            ack_body(&[&forged]),
        )
        .await?;
    assert_eq!(reply.code(), "invalid_ack_id");

    // Nothing was acknowledged: both copies come back after the ack wait.
    let again = read_inbox(&https, "police", &police_token, 1).await?;
    assert_eq!(again[0]["delivery"]["envelope"]["id"], "ref-acks");
    let again = read_inbox(&https, "council", &council_token, 1).await?;
    assert_eq!(again[0]["delivery"]["envelope"]["id"], "ref-acks");
    system.shutdown().await
}

#[tokio::test]
async fn the_openapi_document_follows_the_code() -> anyhow::Result<()> {
    let system = start().await?;
    let https = https_client(&system)?;
    let reply = https.get("/v1/openapi.json", None).await?;
    assert_eq!(reply.status, 200);
    let doc = reply.json()?;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    let envelopes = "/v1/agencies/{agency}/envelopes";
    for path in [
        envelopes,
        "/v1/agencies/{agency}/inbox",
        "/v1/agencies/{agency}/inbox/ack",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    for name in ["Envelope", "Delivery", "Verdict"] {
        let properties = &doc["components"]["schemas"][name]["properties"];
        let message = liaison_proto::message(name);
        for field in message.fields() {
            assert!(
                properties[field.json_name()].is_object(),
                "{name}.{} missing",
                field.name()
            );
        }
        assert_eq!(
            properties.as_object().map(|p| p.len()),
            Some(message.fields().len())
        );
    }
    let responses = &doc["paths"][envelopes]["post"]["responses"];
    for (code, status) in Refusal::codes()
        .into_iter()
        .filter(|(code, _)| *code != "invalid_reply_subject")
    {
        let listed = responses[status.to_string()].to_string();
        assert!(
            listed.contains(&format!("\"{code}\"")),
            "{code} not under {status}: {listed}"
        );
    }
    assert_eq!(
        https.get("/healthz", None).await?.json()?,
        json!({ "status": "ok" })
    );
    system.shutdown().await
}
