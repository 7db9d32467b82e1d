//! Tracing end to end, against a real OTLP receiver (`liaison_tests::otlp`:
//! OTLP/HTTP protobuf on a free port, decoded with `opentelemetry-proto`):
//! one referral is one trace, with a span from every hop — the sending
//! client, the gateway's ingress, its router, each copy delivered, each
//! ledger append, each recipient's receipt — each the child of the hop
//! before it, and none carrying the referral's personal data. The HTTPS door
//! continues a caller's `traceparent` header; a hostile header is ignored
//! and the envelope's own `traceparent` field taken instead.
//!
//! Every test of this binary exports to the one receiver (a process has one
//! exporter); each looks only at its own envelope's trace.

use anyhow::{Result, bail, ensure};
use liaison_core::trace::TraceParent;
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::verdict::Outcome;
use liaison_proto::v1::{Operation, Verdict};
use liaison_tests::https::envelope_json;
use liaison_tests::otlp::{ReceivedSpan, exporting};
use liaison_tests::traces::{counts, named, one, trace_of};
use liaison_tests::{
    agency, assert_refused, eventually, https_client, inbox_exactly, ledger, referral, start,
};
use prost::Message as _;
use std::collections::BTreeMap;
use std::time::Duration;

/// The personal data the test referral carries; none may reach a span.
const PERSONAL: [&str; 8] = [
    "Zebedee Tracewell",
    "2011-02-03",
    "7 Lantern Row",
    "tok-trace-subject",
    "Watched propaganda in the library",
    "Seen by school nurse",
    "Missed nine days",
    "talks of martyrdom",
];

/// A referral from school-a carrying [`PERSONAL`].
fn personal_referral(id: &str) -> liaison_proto::v1::Envelope {
    let mut envelope = referral("school-a", id);
    if let Some(Body::Referral(r)) = envelope.body.as_mut() {
        if let Some(subject) = r.subject.as_mut() {
            subject.full_name = PERSONAL[0].into();
            subject.date_of_birth = PERSONAL[1].into();
            subject.address = PERSONAL[2].into();
            subject.token = PERSONAL[3].into();
        }
        r.concern = PERSONAL[4].into();
        r.health_notes = PERSONAL[5].into();
        r.education_notes = PERSONAL[6].into();
        r.risk_indicators = vec![PERSONAL[7].into()];
    }
    envelope
}

/// No span name, attribute or trace state holds any of [`PERSONAL`].
fn no_personal_data(spans: &[ReceivedSpan]) -> Result<()> {
    for span in spans {
        let mut texts = vec![span.name.as_str(), span.trace_state.as_str()];
        for (key, value) in &span.attributes {
            texts.push(key);
            texts.push(value);
        }
        for text in texts {
            for personal in PERSONAL {
                ensure!(
                    !text.to_lowercase().contains(&personal.to_lowercase()),
                    "span {} carries personal data {personal:?}: {span:?}",
                    span.name
                );
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn one_referral_is_one_trace_with_a_span_from_every_hop() -> Result<()> {
    let exporting = exporting()?;
    let system = start().await?;
    let school = agency(&system, "school-a").await?;
    let police = agency(&system, "police").await?;
    let council = agency(&system, "council").await?;
    let id = uuid::Uuid::new_v4().to_string();

    let receipt = school.submit(&personal_referral(&id)).await?;
    assert_eq!(receipt.recipients, ["council", "police"]);
    let copies = [
        inbox_exactly(&police, 1).await?,
        inbox_exactly(&council, 1).await?,
    ];
    let expected = [
        ("envelope.send", 1),
        ("gateway.ingress", 1),
        ("gateway.route", 1),
        ("gateway.deliver", 2),
        ("audit.append", 3),
        ("envelope.receive", 2),
        ("cases.fold", 1),
        ("linkage.fold", 1),
        ("alerts.fold", 1),
    ];
    let spans = trace_of(exporting, &id, |counts| {
        expected
            .iter()
            .all(|(name, n)| counts.get(*name).copied().unwrap_or(0) >= *n)
    })
    .await?;

    // One trace, these spans and no others, all from this process's service.
    let traces: std::collections::BTreeSet<&str> =
        spans.iter().map(|s| s.trace_id.as_str()).collect();
    assert_eq!(traces.len(), 1, "{spans:#?}");
    let expected_counts: BTreeMap<String, usize> =
        expected.iter().map(|(n, c)| (n.to_string(), *c)).collect();
    assert_eq!(counts(&spans), expected_counts, "{spans:#?}");
    assert!(spans.iter().all(|s| s.service == "liaison-tests"));

    // Each hop the child of the one before it.
    let send = one(&spans, "envelope.send")?;
    let ingress = one(&spans, "gateway.ingress")?;
    let route = one(&spans, "gateway.route")?;
    assert_eq!(send.parent_span_id, "", "the client starts the trace");
    assert_eq!(ingress.parent_span_id, send.span_id);
    assert_eq!(route.parent_span_id, ingress.span_id);
    let mut deliver_by_recipient = BTreeMap::new();
    for deliver in named(&spans, "gateway.deliver") {
        assert_eq!(deliver.parent_span_id, route.span_id);
        let recipient = deliver.attribute("recipient").unwrap_or_default();
        deliver_by_recipient.insert(recipient.to_owned(), deliver.span_id.clone());
    }
    assert_eq!(
        deliver_by_recipient.keys().collect::<Vec<_>>(),
        ["council", "police"]
    );
    for receive in named(&spans, "envelope.receive") {
        let agency = receive.attribute("agency").unwrap_or_default();
        assert_eq!(
            Some(&receive.parent_span_id),
            deliver_by_recipient.get(agency),
            "{agency}'s receipt follows its own copy"
        );
    }
    let mut disclosed_under = Vec::new();
    for append in named(&spans, "audit.append") {
        match append.attribute("operation") {
            // The router records the collection as it routes the event.
            Some("OPERATION_COLLECTION") => assert_eq!(append.parent_span_id, route.span_id),
            Some("OPERATION_DISCLOSURE") => disclosed_under.push(append.parent_span_id.clone()),
            other => bail!("unexpected append {other:?}: {append:?}"),
        }
    }
    disclosed_under.sort();
    for fold in ["cases.fold", "linkage.fold", "alerts.fold"] {
        let fold = one(&spans, fold)?;
        assert_eq!(fold.parent_span_id, ingress.span_id, "{fold:?}");
        assert_eq!(fold.kind, 5, "consumer: {fold:?}");
        assert_eq!(fold.attribute("envelope_id"), Some(id.as_str()));
    }
    let mut deliver_ids: Vec<String> = deliver_by_recipient.values().cloned().collect();
    deliver_ids.sort();
    assert_eq!(
        disclosed_under, deliver_ids,
        "each disclosure under its copy"
    );

    // Span kinds: client, server, consumer, producer (OTLP numbering).
    assert_eq!(
        (send.kind, ingress.kind, route.kind),
        (3, 2, 5),
        "{spans:#?}"
    );
    assert!(named(&spans, "gateway.deliver").iter().all(|s| s.kind == 4));

    // Only ids, kinds, codes and counts: never the referral's content.
    no_personal_data(&spans)?;
    assert_eq!(ingress.attribute("agency"), Some("school-a"));
    assert_eq!(ingress.attribute("kind"), Some("referral"));
    assert_eq!(route.attribute("recipients"), Some("2"));

    // The envelope's field and the ledger name the same trace.
    let trace_id = send.trace_id.clone();
    for delivery in copies.iter().flatten() {
        let field = delivery
            .envelope
            .as_ref()
            .map(|e| e.traceparent.clone())
            .unwrap_or_default();
        let parent = TraceParent::parse(&field)?;
        assert_eq!(
            (parent.trace_id_hex(), parent.span_id_hex()),
            (trace_id.clone(), send.span_id.clone())
        );
    }
    let (report, records) = ledger(&system).await?;
    assert!(report.intact(), "{report:?}");
    let ours: Vec<_> = records.iter().filter(|r| r.envelope_id == id).collect();
    assert_eq!(ours.len(), 3);
    assert!(ours.iter().all(|r| r.trace_id == trace_id), "{ours:?}");
    system.shutdown().await
}

/// A caller's own trace context: random, sampled.
fn callers_context() -> TraceParent {
    TraceParent::new_root()
}

#[tokio::test]
async fn the_https_door_continues_the_callers_traceparent_header() -> Result<()> {
    let exporting = exporting()?;
    let system = start().await?;
    let https = https_client(&system)?;
    let school = agency(&system, "school-a").await?;
    let police = agency(&system, "police").await?;
    let id = uuid::Uuid::new_v4().to_string();
    let caller = callers_context();
    let bearer = format!("Bearer {}", school.token("school-a-dsl")?);
    let reply = https
        .request(
            "POST",
            "/v1/agencies/school-a/envelopes",
            &[
                ("content-type", "application/json"),
                ("authorization", &bearer),
                ("traceparent", &caller.to_string()),
                ("tracestate", "congo=t61rcWkgMzE"),
            ],
            envelope_json(&personal_referral(&id)),
        )
        .await?;
    assert_eq!(reply.status, 201, "{reply:?}");

    // The police's copy carries the caller's trace and trace state on.
    let received = eventually("the police's copy", Duration::from_secs(15), || async {
        let batch = police.next_batch(1, Duration::from_millis(200)).await?;
        Ok(batch.into_iter().next())
    })
    .await?;
    let context = received
        .trace_context()
        .ok_or_else(|| anyhow::anyhow!("the copy came without a trace context"))?;
    assert_eq!(context.parent.trace_id_hex(), caller.trace_id_hex());
    assert_eq!(
        context.state.as_ref().map(|s| s.as_str()),
        Some("congo=t61rcWkgMzE")
    );
    received.ack().await?;
    drop(received);

    let spans = trace_of(exporting, &id, |c| {
        c.get("gateway.deliver") == Some(&2) && c.get("audit.append") == Some(&3)
    })
    .await?;
    let ingress = one(&spans, "gateway.ingress")?;
    assert_eq!(ingress.trace_id, caller.trace_id_hex());
    assert_eq!(ingress.parent_span_id, caller.span_id_hex());
    assert_eq!(
        ingress.trace_state, "",
        "trace state travels in headers only"
    );
    no_personal_data(&spans)?;
    let (_, records) = ledger(&system).await?;
    assert!(
        records
            .iter()
            .filter(|r| r.envelope_id == id)
            .all(|r| r.trace_id == caller.trace_id_hex())
    );
    system.shutdown().await
}

/// Sends `envelope` over NATS with exactly these headers (and the token).
async fn send_with_headers(
    school: &liaison_client::AgencyClient,
    envelope: &liaison_proto::v1::Envelope,
    extra: &[(&str, &str)],
) -> Result<Verdict> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(
        liaison_core::subjects::TOKEN_HEADER,
        school.token(&envelope.author)?.as_str(),
    );
    for (name, value) in extra {
        headers.insert(*name, *value);
    }
    let reply = school
        .nats()
        .request_with_headers(
            liaison_core::subjects::ingress(school.agency()),
            headers,
            envelope.encode_to_vec().into(),
        )
        .await?;
    Ok(Verdict::decode(reply.payload.as_ref())?)
}

#[tokio::test]
async fn a_hostile_header_is_ignored_and_the_envelope_field_is_the_fallback() -> Result<()> {
    let exporting = exporting()?;
    let system = start().await?;
    let school = agency(&system, "school-a").await?;
    let id = uuid::Uuid::new_v4().to_string();
    let caller = callers_context();
    let mut envelope = personal_referral(&id);
    envelope.traceparent = caller.to_string();
    let hostile = format!("00-{}-0000000000000001-01", PERSONAL[0].replace(' ', "-"));
    let verdict = send_with_headers(
        &school,
        &envelope,
        &[("traceparent", &hostile), ("tracestate", PERSONAL[4])],
    )
    .await?;
    assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");
    let spans = trace_of(exporting, &id, |c| c.get("audit.append") == Some(&3)).await?;
    let ingress = one(&spans, "gateway.ingress")?;
    assert_eq!(
        (ingress.trace_id.as_str(), ingress.parent_span_id.as_str()),
        (
            caller.trace_id_hex().as_str(),
            caller.span_id_hex().as_str()
        )
    );
    no_personal_data(&spans)?;

    // A malformed field is refused, without echoing it.
    let mut bad = personal_referral(&uuid::Uuid::new_v4().to_string());
    bad.traceparent = format!("00-{}-01", PERSONAL[0]);
    let verdict = send_with_headers(&school, &bad, &[]).await?;
    assert_refused(&verdict, "invalid_field", "traceparent", "malformed field");
    assert!(!verdict.reason.contains(PERSONAL[0]), "{}", verdict.reason);
    // ... even when a good header makes the field unnecessary.
    let header = callers_context().to_string();
    let verdict = send_with_headers(&school, &bad, &[("traceparent", &header)]).await?;
    assert_refused(
        &verdict,
        "invalid_field",
        "traceparent",
        "field with header",
    );
    let (_, records) = ledger(&system).await?;
    let collection = records
        .iter()
        .find(|r| r.envelope_id == id && r.operation == Operation::Collection as i32)
        .ok_or_else(|| anyhow::anyhow!("no collection record"))?;
    assert_eq!(collection.trace_id, caller.trace_id_hex());
    system.shutdown().await
}
