//! The operations listeners: the gateway's and audit's `/metrics` count what
//! happened, with only bounded labels (no envelope id, name or case id), and
//! `/readyz` answers while NATS is up.

use liaison_client::request;
use liaison_core::time::unix_now;
use liaison_proto::v1::verdict::Outcome;
use liaison_system::system::{System, UpOptions};
use liaison_tests::{assert_refused, config, eventually, http_get, ledger, metric, referral, sign};
use prost::Message;
use serde_json::json;
use std::time::Duration;

async fn start() -> anyhow::Result<System> {
    let options = UpOptions {
        inspector: true,
        gateway_telemetry: Some("127.0.0.1:0".into()),
        audit_telemetry: Some("127.0.0.1:0".into()),
        ..UpOptions::default()
    };
    System::start(config(), options).await
}

#[tokio::test]
async fn metrics_count_what_happened_with_bounded_labels_only() -> anyhow::Result<()> {
    let system = start().await?;
    let (Some(gateway), Some(audit)) = (
        system.gateway_telemetry_addr(),
        system.audit_telemetry_addr(),
    ) else {
        anyhow::bail!("the operations listeners are not open");
    };
    let school = liaison_tests::agency(&system, "school-a").await?;
    let mut envelope = referral("school-a", "ref-metrics-0001");
    envelope.case_id = "case-metrics-7".into();
    let mut ids = vec![];
    for n in 1..=3 {
        envelope.id = format!("ref-metrics-000{n}");
        ids.push(envelope.id.clone());
        let verdict = school.send(&envelope).await?;
        assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");
    }
    // Refused: no token; and an agency the registry does not know.
    let verdict = school
        .send_raw(envelope.encode_to_vec().into(), None)
        .await?;
    assert_refused(&verdict, "missing_token", "Liaison-Token", "missing_token");
    let now = unix_now() as i64;
    let token = sign(
        "school-a",
        &json!({"iss": "ghost-agency", "sub": "x", "aud": "liaison-gateway", "iat": now,
                "nbf": now, "exp": now + 60, "jti": "j-metrics"}),
    )?;
    let verdict = request(
        &liaison_tests::speaking_for(&system, "ghost-agency").await?,
        "liaison.ingress.ghost-agency.envelope".into(),
        envelope.encode_to_vec().into(),
        Some(&token),
        Duration::from_secs(3),
    )
    .await?;
    assert_refused(&verdict, "unknown_agency", "ghost-agency", "unknown_agency");

    let page = eventually(
        "the deliveries and pending counts",
        Duration::from_secs(20),
        || async {
            let (status, page) = http_get(gateway, "/metrics").await?;
            assert_eq!(status, 200);
            let delivered = |to: &str| {
                metric(
                    &page,
                    &format!(
                        "liaison_gateway_deliveries_total{{recipient=\"{to}\",kind=\"referral\"}}"
                    ),
                )
            };
            let pending = metric(&page, "liaison_delivery_pending{agency=\"police\"}");
            Ok((delivered("police") == Some(3.0)
                && delivered("council") == Some(3.0)
                && pending == Some(3.0))
            .then_some(page))
        },
    )
    .await?;
    let value = |series: &str| metric(&page, series);
    assert_eq!(
        value("liaison_gateway_envelopes_accepted_total{agency=\"school-a\",kind=\"referral\"}"),
        Some(3.0),
        "{page}"
    );
    assert_eq!(
        value(
            "liaison_gateway_envelopes_refused_total{agency=\"school-a\",code=\"missing_token\"}"
        ),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        value(
            "liaison_gateway_envelopes_refused_total{agency=\"invalid\",code=\"unknown_agency\"}"
        ),
        Some(1.0),
        "the unregistered agency is not a label value: {page}"
    );
    assert!(!page.contains("ghost-agency"), "{page}");
    assert_eq!(
        value("liaison_gateway_verdict_seconds_count"),
        Some(5.0),
        "{page}"
    );
    assert!(
        value("liaison_gateway_redacted_total{recipient=\"police\"}").is_some_and(|v| v >= 1.0),
        "police's copies lose their health and education notes: {page}"
    );
    assert!(page.contains("# TYPE liaison_gateway_verdict_seconds histogram"));
    for personal in
        ids.iter()
            .map(String::as_str)
            .chain(["case-metrics-7", "Alex Example", "tok-test-"])
    {
        assert!(
            !page.contains(personal),
            "{personal} in the gateway's metrics"
        );
    }

    let (status, body) = http_get(gateway, "/readyz").await?;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    assert_eq!(http_get(gateway, "/healthz").await?.0, 200);
    assert_eq!(http_get(audit, "/readyz").await?.0, 200);

    // The audit service's height is the verified ledger's.
    let (report, _) = ledger(&system).await?;
    assert!(report.intact() && report.verified > 0, "{report:?}");
    eventually("the audit height", Duration::from_secs(10), || async {
        let (_, page) = http_get(audit, "/metrics").await?;
        Ok((metric(&page, "liaison_ledger_height") == Some(report.verified as f64)).then_some(()))
    })
    .await?;
    let (_, page) = http_get(audit, "/metrics").await?;
    assert!(
        metric(&page, "liaison_ledger_append_batch_records_count").is_some_and(|n| n >= 1.0),
        "{page}"
    );
    assert!(
        page.contains("# TYPE liaison_ledger_last_checkpoint_size gauge"),
        "{page}"
    );
    system.shutdown().await
}
