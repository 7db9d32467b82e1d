//! Refusals at the HTTPS door: each carries the code the NATS door gives for
//! the same request, the status `Refusal::http_status` maps it to, a reason,
//! and an audit record; and no request, however odd, gets anything but a
//! JSON error or stops the door.

use liaison_proto::v1::CaseUpdated;
use liaison_proto::v1::Decision;
use liaison_proto::v1::envelope::Body;
use liaison_tests::https::{Reply, envelope_json};
use liaison_tests::{agency, https_client, inbox_exactly, ledger, referral, start};
use prost::Message as _;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn refusals_over_https_carry_the_nats_doors_codes_and_are_audited() -> anyhow::Result<()> {
    let system = start().await?;
    let https = https_client(&system)?;
    let school = agency(&system, "school-a").await?;
    let police = agency(&system, "police").await?;
    let good = referral("school-a", "ref-refused");
    let good_json = envelope_json(&good);
    let path = "/v1/agencies/school-a/envelopes";
    let mut audited = Vec::new();

    // Each refusal: the HTTPS reply's status and code, the same code from the
    // NATS door for the same request (when it can be sent there), and one
    // audit record per refused request.
    let mut check = |what: &str, reply: Reply, expected: (u16, &str), nats_code: Option<String>| {
        let code = reply.code();
        assert_eq!((reply.status, code.as_str()), expected, "{what}: {reply:?}");
        let reason = reply
            .json()
            .ok()
            .and_then(|v| v["reason"].as_str().map(str::to_owned));
        assert!(reason.is_some_and(|r| !r.is_empty()), "{what}: no reason");
        audited.push(code.clone());
        if let Some(nats_code) = nats_code {
            assert_eq!(code, nats_code, "{what}: the doors disagree");
            audited.push(nats_code);
        }
    };

    let reply = https.post_json(path, None, good_json.clone()).await?;
    let nats = school.send_raw(good.encode_to_vec().into(), None).await?;
    check(
        "no Authorization",
        reply,
        (401, "missing_token"),
        Some(nats.code),
    );

    let police_token = police.token("police-analyst")?;
    let reply = https
        .post_json(path, Some(&police_token), good_json.clone())
        .await?;
    let nats = school
        .send_raw(good.encode_to_vec().into(), Some(&police_token))
        .await?;
    check(
        "another agency's token",
        reply,
        (401, "invalid_token"),
        Some(nats.code),
    );

    let token = school.token("school-a-dsl")?;
    let huge = format!("{{\"id\": \"{}", "x".repeat(70 * 1024));
    let reply = https.post_json(path, Some(&token), huge).await?;
    let nats = school
        .send_raw(vec![b'{'; 70 * 1024].into(), Some(&token))
        .await?;
    check(
        "oversized (and not even JSON)",
        reply,
        (413, "too_large"),
        Some(nats.code),
    );

    let reply = https.post_json(path, Some(&token), "{\"id\": [1, ").await?;
    let nats = school
        .send_raw(vec![0xff, 0xff, 0x01].into(), Some(&token))
        .await?;
    check(
        "garbage",
        reply,
        (400, "malformed_envelope"),
        Some(nats.code),
    );

    let mut unknown: Value = serde_json::from_str(&good_json)?;
    unknown["nickname"] = json!("Al");
    let reply = https
        .post_json(path, Some(&token), unknown.to_string())
        .await?;
    assert!(
        reply.json()?["reason"]
            .as_str()
            .is_some_and(|r| r.contains("nickname")),
        "{reply:?}"
    );
    // Protobuf has no unknown-field refusal to compare with: JSON only.
    check("unknown field", reply, (400, "malformed_envelope"), None);

    for bad in ["POLICE!", "..%2Fx", "school_a", "%FF"] {
        let reply = https
            .post_json(
                &format!("/v1/agencies/{bad}/envelopes"),
                Some(&token),
                good_json.clone(),
            )
            .await?;
        let nats = liaison_client::request(
            &liaison_tests::speaking_for(&system, "School_A").await?,
            "liaison.ingress.School_A.envelope".into(),
            good.encode_to_vec().into(),
            Some(&token),
            Duration::from_secs(3),
        )
        .await?;
        check(bad, reply, (400, "invalid_agency_id"), Some(nats.code));
    }

    let mut update = referral("school-a", "ref-update");
    update.case_id = "CASE-1".into();
    update.body = Some(Body::CaseUpdate(CaseUpdated {
        summary: "not the school's to send".into(),
        ..Default::default()
    }));
    let reply = https
        .post_json(path, Some(&token), envelope_json(&update))
        .await?;
    update.id = "ref-update-nats".into();
    let nats = school.send(&update).await?;
    check(
        "policy denied",
        reply,
        (403, "policy_denied"),
        Some(nats.code),
    );

    // Refused by HTTP itself, before the ingress path: not an envelope at all.
    let reply = https
        .request(
            "POST",
            path,
            &[("content-type", "text/plain")],
            good_json.clone(),
        )
        .await?;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (415, "unsupported_media_type")
    );

    let (report, records) = ledger(&system).await?;
    assert!(report.intact(), "{report:?}");
    let refused: Vec<String> = records
        .iter()
        .filter(|r| r.decision == Decision::Refused as i32)
        .map(|r| r.code.clone())
        .collect();
    assert_eq!(refused, audited);
    let denial = records
        .iter()
        .find(|r| r.code == "policy_denied")
        .ok_or_else(|| anyhow::anyhow!("no denial record"))?;
    assert_eq!(
        (denial.agency.as_str(), denial.envelope_id.as_str()),
        ("school-a", "ref-update")
    );
    // Nothing refused was stored or delivered.
    inbox_exactly(&police, 0).await?;
    system.shutdown().await
}

#[tokio::test]
async fn odd_requests_get_json_errors_and_the_door_stays_up() -> anyhow::Result<()> {
    let system = start().await?;
    let https = https_client(&system)?;
    let token = agency(&system, "police").await?.token("police-analyst")?;
    // (method and path, with ~ for /v1/agencies/police; Authorization, with
    // TOKEN for the police's own; Content-Type; body; the code expected)
    #[rustfmt::skip]
    let cases = [
        (
            "GET ~/inbox?max=abc",
            "Bearer TOKEN",
            "",
            "",
            "invalid_request",
        ),
        (
            "GET ~/inbox?max=0",
            "Bearer TOKEN",
            "",
            "",
            "invalid_request",
        ),
        (
            "GET ~/inbox?wait_ms=999999",
            "Bearer TOKEN",
            "",
            "",
            "invalid_request",
        ),
        (
            "GET ~/inbox?max=1&max=2",
            "Bearer TOKEN",
            "",
            "",
            "invalid_request",
        ),
        ("GET ~/inbox", "Bearer", "", "", "invalid_token"),
        ("GET ~/inbox", "Basic cG9saWNlOng=", "", "", "invalid_token"),
        ("GET ~/inbox", "", "", "", "missing_token"),
        (
            "GET /v1/agencies/POLICE!/inbox",
            "Bearer TOKEN",
            "",
            "",
            "invalid_agency_id",
        ),
        (
            "GET /v1/agencies/ghost/inbox",
            "Bearer TOKEN",
            "",
            "",
            "unknown_agency",
        ),
        (
            "POST ~/inbox/ack",
            "Bearer TOKEN",
            "",
            "not json",
            "invalid_request",
        ),
        (
            "POST ~/inbox/ack",
            "Bearer TOKEN",
            "",
            r#"{"ack_ids": ["%%"]}"#,
            "invalid_ack_id",
        ),
        (
            "POST ~/inbox/ack",
            "Bearer TOKEN",
            "",
            r#"{"ack_ids": [], "x": 1}"#,
            "invalid_request",
        ),
        (
            "POST ~/envelopes",
            "Bearer a.b.c",
            "",
            "\u{0}\u{1}",
            "invalid_token",
        ),
        (
            "POST ~/envelopes",
            "Bearer TOKEN",
            "application/x-protobuf",
            "\u{1}",
            "malformed_envelope",
        ),
        (
            "POST ~/envelopes",
            "Bearer TOKEN",
            "image/png",
            "{}",
            "unsupported_media_type",
        ),
        ("GET ~/envelopes", "", "", "", "method_not_allowed"),
        ("GET /../../etc/passwd", "", "", "", "not_found"),
        ("GET /v1/agencies/../x/inbox", "", "", "", "not_found"),
    ];
    for (request, authorization, content_type, body, expected) in cases {
        let (method, path) = request.split_once(' ').unwrap_or_default();
        let path = path.replace('~', "/v1/agencies/police");
        let authorization = authorization.replace("TOKEN", &token);
        let mut headers = vec![];
        if !authorization.is_empty() {
            headers.push(("authorization", authorization.as_str()));
        }
        if !content_type.is_empty() {
            headers.push(("content-type", content_type));
        }
        let reply = https
            .request(method, &path, &headers, body.to_owned())
            .await?;
        assert!(reply.status >= 400, "{request}: {reply:?}");
        assert_eq!(reply.code(), expected, "{request}: {reply:?}");
        assert!(reply.json()?["reason"].is_string(), "{request}: {reply:?}");
    }
    assert_eq!(https.get("/healthz", None).await?.status, 200);
    system.shutdown().await
}
