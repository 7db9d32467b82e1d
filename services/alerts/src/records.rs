//! The alerts service's decision records, published to DECISIONS on
//! `liaison.decisions.alerts` for the audit service to chain into the ledger:
//! one per acknowledgement it counts (operation COLLECTION, code
//! `alert_acknowledged`) and one per escalation (operation COMBINATION, code
//! `alert_escalated`: the alert's recipients combined with the
//! acknowledgements). Record ids are derived from the envelope ids, so a
//! record published again after a restart or a rebuild is de-duplicated.
//! Records hold ids, agency ids and codes, never the alert's content. Each
//! is published with the trace context of the span it is made in (the
//! `alerts.fold` of its event), so the ledger's append joins that trace.

use crate::alert::Alert;
use async_nats::HeaderMap;
use async_nats::jetstream::Context;
use liaison_core::system::Service;
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::{AuditRecord, Decision, Envelope, Operation};
use prost::Message as _;

/// Publishes records and waits for JetStream to store each.
#[derive(Clone)]
pub struct Recorder {
    js: Context,
    subject: String,
}

impl Recorder {
    pub fn new(js: Context) -> Self {
        Self {
            js,
            subject: Service::Alerts.decisions(),
        }
    }

    pub async fn publish(&self, record: &AuditRecord) -> Result<(), String> {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", record.record_id.as_str());
        if let Some(context) = liaison_core::hop::current() {
            liaison_core::trace::inject(&mut headers, &context);
        }
        self.js
            .publish_with_headers(self.subject.clone(), headers, record.encode_to_vec().into())
            .await
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// An action code from the acknowledgement ("read", "actioned", ...), if it is one.
fn action(envelope: &Envelope) -> Option<&str> {
    let Some(Body::AlertAck(ack)) = &envelope.body else {
        return None;
    };
    let code = ack.action.as_str();
    (!code.is_empty()
        && code.len() <= 32
        && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
    .then_some(code)
}

fn base(envelope: &Envelope, at_ms: i64) -> AuditRecord {
    AuditRecord {
        decision: Decision::Accepted as i32,
        purpose: envelope.purpose.clone(),
        legal_basis: envelope.legal_basis.clone(),
        time: Some(timestamp(at_ms)),
        agency: envelope.sender_agency.clone(),
        author: envelope.author.clone(),
        envelope_id: envelope.id.clone(),
        kind: envelope.kind().to_owned(),
        classification: envelope.classification,
        service: Service::Alerts.name().to_owned(),
        ..Default::default()
    }
}

/// The alerts service counted `ack` (accepted at `at_ms`) for `alert`.
pub fn acknowledgement(alert: &Alert, ack: &Envelope, at_ms: i64) -> AuditRecord {
    let action = action(ack).map(|a| format!(" ({a})")).unwrap_or_default();
    AuditRecord {
        record_id: format!("alerts:ack:{}", ack.id),
        operation: Operation::Collection as i32,
        code: "alert_acknowledged".into(),
        reason: format!(
            "{} acknowledged alert {}{action}: {} of {} business partners have",
            ack.sender_agency,
            alert.id,
            alert.acknowledged_count(),
            alert.must_acknowledge.len()
        ),
        recipients: vec![alert.issued_by.to_string()],
        ..base(ack, at_ms)
    }
}

/// The alerts service escalated `alert` (`escalation`: the echo, accepted at `at_ms`).
pub fn escalation(alert: &Alert, escalation: &Envelope, at_ms: i64) -> AuditRecord {
    let (unacknowledged, after) = match &escalation.body {
        Some(Body::AlertEscalated(e)) => (e.unacknowledged.clone(), e.after_seconds),
        _ => (vec![], 0),
    };
    let mut recipients = vec![alert.issued_by.to_string()];
    recipients.extend(unacknowledged.iter().cloned());
    AuditRecord {
        record_id: format!("alerts:escalation:{}", escalation.id),
        operation: Operation::Combination as i32,
        code: "alert_escalated".into(),
        reason: format!(
            "alert {} not acknowledged within {after} s by {} of {} business partners: {}",
            alert.id,
            unacknowledged.len(),
            alert.must_acknowledge.len(),
            unacknowledged.join(", ")
        ),
        recipients,
        ..base(escalation, at_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::tests::{accepted_alert, business};
    use liaison_proto::v1::AlertAcknowledged;

    #[test]
    fn records_name_ids_and_codes_only() {
        let alert = Alert::issued(1, &accepted_alert("a-1", &["retail-bsp"]), business)
            .unwrap_or_else(|| panic!("alert"));
        let ack = Envelope {
            id: "ack-1".into(),
            sender_agency: "retail-bsp".into(),
            purpose: "protective-security".into(),
            body: Some(Body::AlertAck(AlertAcknowledged {
                action: "Robert Smith read it".into(),
            })),
            ..Default::default()
        };
        let record = acknowledgement(&alert, &ack, 1_500);
        assert_eq!(record.record_id, "alerts:ack:ack-1");
        assert_eq!(record.recipients, vec!["police"]);
        assert_eq!(record.service, "alerts");
        assert!(!record.reason.contains("Robert"), "{}", record.reason);
        assert_eq!(
            record.time.map(|t| (t.seconds, t.nanos)),
            Some((1, 500_000_000))
        );
        let ack = Envelope {
            body: Some(Body::AlertAck(AlertAcknowledged {
                action: "actioned".into(),
            })),
            ..ack
        };
        assert!(
            acknowledgement(&alert, &ack, 0)
                .reason
                .contains("(actioned)")
        );
    }
}
