//! One alert as the alerts service knows it, folded from EVENTS: who issued
//! it and how it was addressed, who received it, which of them are business
//! partners that must acknowledge it, who has, and the escalations raised.
//! Pure data and pure folding (no I/O): [`crate::tracker`] applies events and
//! stores the result, [`crate::escalation`] decides when to escalate.
//!
//! It holds no personal data: ids, agency ids, codes and times only (not the
//! alert's headline, advice or location).

use liaison_core::AgencyId;
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::{Envelope, EnvelopeAccepted};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Most sectors kept per alert, and the longest sector or region kept.
const MAX_SECTORS: usize = 32;
const MAX_CODE: usize = 64;

/// One alert and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alert {
    /// The alert's envelope id.
    pub id: String,
    /// The agency that issued it.
    pub issued_by: AgencyId,
    /// Its `AlertIssued.ThreatLevel` number.
    pub threat_level: i32,
    pub sectors: Vec<String>,
    pub region: String,
    /// Its `Classification` number and handling caveats: an escalation carries them too.
    pub classification: i32,
    pub caveats: Vec<String>,
    /// The legal basis it was shared under: an escalation serves the same work.
    pub legal_basis: String,
    /// When the gateway accepted it, Unix milliseconds.
    pub accepted_at_ms: i64,
    /// Its sequence in EVENTS.
    pub seq: u64,
    /// Every agency that received a copy.
    pub recipients: Vec<AgencyId>,
    /// The business partners among them: each must acknowledge it.
    pub must_acknowledge: Vec<AgencyId>,
    /// Recipients that acknowledged it (their first acknowledgement).
    pub acknowledgements: BTreeMap<AgencyId, Acknowledgement>,
    /// Escalations raised, in order (their echoes in EVENTS).
    pub escalations: Vec<Escalation>,
    /// The id of an escalation the gateway refused (the refusal is in the
    /// ledger); the alert is not escalated again.
    #[serde(default)]
    pub escalation_refused: Option<String>,
    /// The W3C `traceparent` of the span that tracked it: its escalations
    /// continue the alert's trace (empty: none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub traceparent: String,
}

/// A recipient's acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acknowledgement {
    pub envelope_id: String,
    /// When the gateway accepted it, Unix milliseconds.
    pub at_ms: i64,
}

/// One escalation, as it came back through EVENTS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    pub envelope_id: String,
    /// 1 for the first escalation of the alert, 2 for the next ...
    pub n: u32,
    pub at_ms: i64,
    pub unacknowledged: Vec<AgencyId>,
}

/// Unix milliseconds of an event's acceptance (0 if it has none).
pub fn accepted_ms(accepted: &EnvelopeAccepted) -> i64 {
    accepted
        .accepted_at
        .as_ref()
        .map_or(0, |t| t.seconds * 1000 + i64::from(t.nanos / 1_000_000))
}

fn code(value: &str) -> String {
    value.chars().take(MAX_CODE).collect()
}

fn agencies<'a>(ids: impl IntoIterator<Item = &'a String>) -> Vec<AgencyId> {
    let mut ids: Vec<AgencyId> = ids
        .into_iter()
        .filter_map(|id| AgencyId::parse(id).ok())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The envelope id of the `n`-th escalation of `alert_id`: deterministic, so
/// that raising it again (after a crash, or from a rebuilt state) is a
/// duplicate the gateway does not deliver twice. Envelope ids are at most 64
/// characters: a long alert id is replaced by a hash of it.
pub fn escalation_id(alert_id: &str, n: u32) -> String {
    let id = format!("alert-escalated:{alert_id}:{n}");
    if id.len() <= liaison_core::ids::MAX_ENVELOPE_ID_LEN {
        return id;
    }
    let hash = hex::encode(&Sha256::digest(alert_id.as_bytes())[..16]);
    format!("alert-escalated:{hash}:{n}")
}

/// The escalation number at the end of an escalation id (0 if none).
fn escalation_number(envelope_id: &str) -> u32 {
    envelope_id
        .rsplit(':')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

impl Alert {
    /// The alert an accepted `alert` envelope is, if it is one. `business`
    /// says whether a recipient is a business partner.
    pub fn issued(
        seq: u64,
        accepted: &EnvelopeAccepted,
        business: impl Fn(&AgencyId) -> bool,
    ) -> Option<Self> {
        let envelope = accepted.envelope.as_ref()?;
        let Some(Body::Alert(body)) = &envelope.body else {
            return None;
        };
        let issued_by = AgencyId::parse(&envelope.sender_agency).ok()?;
        let recipients = agencies(accepted.routes.iter().map(|r| &r.recipient));
        let must_acknowledge = recipients.iter().filter(|a| business(a)).cloned().collect();
        Some(Self {
            id: envelope.id.clone(),
            issued_by,
            threat_level: body.threat_level,
            sectors: body
                .sectors
                .iter()
                .take(MAX_SECTORS)
                .map(|s| code(s))
                .collect(),
            region: code(&body.region),
            classification: envelope.classification,
            caveats: envelope.handling_caveats.clone(),
            legal_basis: envelope.legal_basis.clone(),
            accepted_at_ms: accepted_ms(accepted),
            seq,
            recipients,
            must_acknowledge,
            acknowledgements: BTreeMap::new(),
            escalations: vec![],
            escalation_refused: None,
            traceparent: String::new(),
        })
    }

    /// Folds an acknowledgement by `envelope`'s sender; whether it changed
    /// the alert (a recipient's first acknowledgement).
    pub fn acknowledge(&mut self, envelope: &Envelope, at_ms: i64) -> bool {
        let Ok(sender) = AgencyId::parse(&envelope.sender_agency) else {
            return false;
        };
        if !self.recipients.contains(&sender) || self.acknowledgements.contains_key(&sender) {
            return false;
        }
        self.acknowledgements.insert(
            sender,
            Acknowledgement {
                envelope_id: envelope.id.clone(),
                at_ms,
            },
        );
        true
    }

    /// Folds the echo of one of the service's escalations; whether it is new.
    pub fn escalated(&mut self, envelope: &Envelope, at_ms: i64) -> bool {
        if self
            .escalations
            .iter()
            .any(|e| e.envelope_id == envelope.id)
        {
            return false;
        }
        let unacknowledged = match &envelope.body {
            Some(Body::AlertEscalated(e)) => agencies(&e.unacknowledged),
            _ => vec![],
        };
        self.escalations.push(Escalation {
            envelope_id: envelope.id.clone(),
            n: escalation_number(&envelope.id),
            at_ms,
            unacknowledged,
        });
        self.escalations.sort_by_key(|e| e.n);
        true
    }

    /// Business partners that have not acknowledged it.
    pub fn unacknowledged(&self) -> Vec<AgencyId> {
        self.must_acknowledge
            .iter()
            .filter(|a| !self.acknowledgements.contains_key(*a))
            .cloned()
            .collect()
    }

    /// How many of the business partners have acknowledged it.
    pub fn acknowledged_count(&self) -> usize {
        self.must_acknowledge
            .iter()
            .filter(|a| self.acknowledgements.contains_key(*a))
            .count()
    }

    /// Whether some business partner has still to acknowledge it.
    pub fn outstanding(&self) -> bool {
        self.acknowledged_count() < self.must_acknowledge.len()
    }

    /// The number of the last escalation raised (0: none).
    pub fn escalation_count(&self) -> u32 {
        self.escalations.iter().map(|e| e.n).max().unwrap_or(0)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use liaison_proto::v1::{AlertAcknowledged, AlertEscalated, AlertIssued, Route};

    pub(crate) fn accepted_alert(id: &str, recipients: &[&str]) -> EnvelopeAccepted {
        EnvelopeAccepted {
            envelope: Some(Envelope {
                id: id.into(),
                sender_agency: "police".into(),
                classification: 1,
                legal_basis: "DPA-2018-s35".into(),
                body: Some(Body::Alert(AlertIssued {
                    threat_level: 4,
                    sectors: vec!["retail".into()],
                    region: "london".into(),
                    headline: "not kept".into(),
                    ..Default::default()
                })),
                ..Default::default()
            }),
            accepted_at: Some(prost_types::Timestamp {
                seconds: 1_000,
                nanos: 500_000_000,
            }),
            routes: recipients
                .iter()
                .map(|r| Route {
                    recipient: (*r).into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    pub(crate) fn business(agency: &AgencyId) -> bool {
        agency.as_str().ends_with("-bsp")
    }

    fn ack(sender: &str, id: &str) -> Envelope {
        Envelope {
            id: id.into(),
            sender_agency: sender.into(),
            in_reply_to: "a-1".into(),
            body: Some(Body::AlertAck(AlertAcknowledged::default())),
            ..Default::default()
        }
    }

    #[test]
    fn business_recipients_must_acknowledge_and_acknowledgements_fold_once() {
        let accepted = accepted_alert("a-1", &["retail-bsp", "council", "transport-bsp"]);
        let mut alert = Alert::issued(7, &accepted, business).unwrap_or_else(|| panic!("alert"));
        assert_eq!(alert.accepted_at_ms, 1_000_500);
        assert_eq!(alert.must_acknowledge.len(), 2);
        assert!(alert.outstanding());
        assert!(alert.acknowledge(&ack("retail-bsp", "ack-1"), 2_000));
        assert!(!alert.acknowledge(&ack("retail-bsp", "ack-2"), 3_000));
        // Not a recipient: not counted (the gateway refuses it anyway).
        assert!(!alert.acknowledge(&ack("school-a", "ack-3"), 3_000));
        // The council may acknowledge; it is not among those who must.
        assert!(alert.acknowledge(&ack("council", "ack-4"), 3_000));
        assert_eq!(alert.acknowledged_count(), 1);
        assert_eq!(
            alert.unacknowledged(),
            vec![AgencyId::parse("transport-bsp").unwrap_or_else(|e| panic!("{e}"))]
        );
        assert!(alert.acknowledge(&ack("transport-bsp", "ack-5"), 4_000));
        assert!(!alert.outstanding());
    }

    #[test]
    fn escalation_echoes_fold_once_and_are_numbered_by_their_id() {
        let accepted = accepted_alert("a-1", &["transport-bsp"]);
        let mut alert = Alert::issued(1, &accepted, business).unwrap_or_else(|| panic!("alert"));
        let echo = |n| Envelope {
            id: escalation_id("a-1", n),
            body: Some(Body::AlertEscalated(AlertEscalated {
                unacknowledged: vec!["transport-bsp".into()],
                ..Default::default()
            })),
            ..Default::default()
        };
        assert!(alert.escalated(&echo(1), 5));
        assert!(!alert.escalated(&echo(1), 6));
        assert!(alert.escalated(&echo(2), 7));
        assert_eq!(alert.escalation_count(), 2);
        assert_eq!(alert.escalations[0].unacknowledged.len(), 1);
    }

    #[test]
    fn escalation_ids_are_valid_envelope_ids_whatever_the_alert_id() {
        assert_eq!(escalation_id("a-1", 2), "alert-escalated:a-1:2");
        let long = "x".repeat(64);
        let id = escalation_id(&long, 3);
        assert!(liaison_core::ids::validate_envelope_id(&id).is_ok(), "{id}");
        assert_ne!(id, escalation_id(&"y".repeat(64), 3));
        assert_eq!(escalation_number(&id), 3);
    }
}
