//! The cases, linkage and alerts services continue the trace of what they
//! fold from EVENTS, and the events they raise continue theirs: a referral
//! of a former subject and the re-engagement alert the linkage service
//! raises about it are one trace, from the referring agency's send to the
//! police's copy of the alert, with the match's COMBINATION record under
//! the fold that made it; no span carries the subject token. Against a real
//! OTLP receiver (`liaison_tests::otlp`).

use anyhow::Result;
use liaison_tests::casework::{close_case, open_case, refer};
use liaison_tests::otlp::{ReceivedSpan, exporting};
use liaison_tests::traces::trace_until;
use liaison_tests::{agency, eventually, start};
use std::time::Duration;

#[tokio::test]
async fn a_referral_and_the_reengagement_alert_it_causes_are_one_trace() -> Result<()> {
    let exporting = exporting()?;
    let system = start().await?;
    let school = agency(&system, "school-a").await?;
    let nhs = agency(&system, "nhs-trust").await?;
    let police = agency(&system, "police").await?;
    let token = format!("tok-trace-re-{}", uuid::Uuid::new_v4().simple());
    let case = "CASE-TR-1";
    let first = uuid::Uuid::new_v4().to_string();
    refer(&school, &first, &token).await?;
    open_case(&system, &police, case, &[&token], &first).await?;
    close_case(&police, case).await?;

    // The former subject is referred again: the linkage service raises a
    // re-engagement alert to the police, who owned the closed case.
    let id = uuid::Uuid::new_v4().to_string();
    refer(&nhs, &id, &token).await?;
    let alert_id = eventually(
        "the police's re-engagement alert",
        Duration::from_secs(20),
        || async {
            let batch = police.inbox(10, Duration::from_millis(200)).await?;
            Ok(batch
                .into_iter()
                .filter_map(|d| d.envelope)
                .find(|e| e.kind() == "reengagement")
                .map(|e| e.id))
        },
    )
    .await?;
    let has = |spans: &[ReceivedSpan], name: &str, envelope: &str| {
        spans
            .iter()
            .any(|s| s.name == name && s.attribute("envelope_id") == Some(envelope))
    };
    let spans = trace_until(exporting, &id, |spans| {
        [
            ("gateway.ingress", &id),
            ("linkage.fold", &id),
            ("gateway.ingress", &alert_id),
            ("gateway.route", &alert_id),
            ("gateway.deliver", &alert_id),
            ("linkage.fold", &alert_id),
            ("cases.fold", &alert_id),
        ]
        .iter()
        .all(|(name, envelope)| has(spans, name, envelope))
            && spans.iter().any(|s| {
                s.name == "audit.append"
                    && s.attribute("operation") == Some("OPERATION_COMBINATION")
            })
    })
    .await?;
    let traces: std::collections::BTreeSet<&str> =
        spans.iter().map(|s| s.trace_id.as_str()).collect();
    assert_eq!(traces.len(), 1, "{spans:#?}");

    // referral ingress → linkage.fold → the alert's ingress at the internal
    // door → its route → its copy to the police; the match recorded under
    // the fold that made it.
    let by = |name: &str, envelope: &str| {
        spans
            .iter()
            .find(|s| s.name == name && s.attribute("envelope_id") == Some(envelope))
            .ok_or_else(|| anyhow::anyhow!("no {name} of {envelope}: {spans:#?}"))
    };
    let ingress = by("gateway.ingress", &id)?;
    let matched = by("linkage.fold", &id)?;
    assert_eq!(matched.parent_span_id, ingress.span_id);
    let raised = by("gateway.ingress", &alert_id)?;
    assert_eq!(raised.parent_span_id, matched.span_id, "{spans:#?}");
    assert_eq!(raised.attribute("agency"), Some("liaison-linkage"));
    assert_eq!(raised.attribute("kind"), Some("reengagement"));
    let route = by("gateway.route", &alert_id)?;
    assert_eq!(route.parent_span_id, raised.span_id);
    let copy = by("gateway.deliver", &alert_id)?;
    assert_eq!(
        (copy.parent_span_id.as_str(), copy.attribute("recipient")),
        (route.span_id.as_str(), Some("police"))
    );
    let combination = spans
        .iter()
        .find(|s| {
            s.name == "audit.append" && s.attribute("operation") == Some("OPERATION_COMBINATION")
        })
        .ok_or_else(|| anyhow::anyhow!("no COMBINATION append: {spans:#?}"))?;
    assert_eq!(combination.parent_span_id, matched.span_id);
    // The services fold the alert's echo too, in the same trace.
    assert_eq!(
        by("linkage.fold", &alert_id)?.parent_span_id,
        raised.span_id
    );
    assert_eq!(by("cases.fold", &alert_id)?.parent_span_id, raised.span_id);
    for span in &spans {
        for (key, value) in &span.attributes {
            assert!(
                !value.contains(&token),
                "{} carries the subject token in {key}: {span:?}",
                span.name
            );
        }
    }
    system.shutdown().await
}
