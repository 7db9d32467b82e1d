//! What a match raises: the envelope the linkage service sends through the
//! gateway's internal door (a `ReengagementAlert` to the former case's owner,
//! a `DuplicateSubject` to the live cases' owners or to the recipients of the
//! referrals), and the COMBINATION record of the match for the ledger. Both
//! are pure functions of the match, so a match decided again after a crash
//! or a rebuild gives the same envelope id and the same record id.
//!
//! They carry tokens, agency ids, case and envelope ids: never a name or a
//! date of birth. It does not send anything ([`crate::service`] does).

use crate::index::{Match, Referral};
use liaison_core::system::Service;
use liaison_core::time::timestamp_now;
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::{
    AuditRecord, Classification, Decision, DuplicateSubject, Envelope, Operation, ReengagementAlert,
};
use std::collections::BTreeSet;

/// The purpose and legal basis linkage's events are raised under (`[linkage]`).
#[derive(Debug, Clone)]
pub struct Grounds {
    pub purpose: String,
    pub legal_basis: String,
}

pub use liaison_core::ids::event_id;

/// Derived information keeps the highest classification, and every caveat,
/// of what it was derived from; at least OFFICIAL-SENSITIVE.
fn marking<'a>(referrals: impl Iterator<Item = &'a Referral>) -> (i32, Vec<String>) {
    let mut classification = Classification::OfficialSensitive as i32;
    let mut caveats = BTreeSet::new();
    for r in referrals {
        classification = classification.max(r.classification);
        caveats.extend(r.caveats.iter().cloned());
    }
    (classification, caveats.into_iter().collect())
}

fn base(grounds: &Grounds, id: String, referrals: &[&Referral]) -> Envelope {
    let sender = Service::Linkage.sender().to_string();
    let (classification, handling_caveats) = marking(referrals.iter().copied());
    Envelope {
        id,
        author: sender.clone(),
        sender_agency: sender,
        sent_at: Some(timestamp_now()),
        classification,
        handling_caveats,
        purpose: grounds.purpose.clone(),
        legal_basis: grounds.legal_basis.clone(),
        ..Default::default()
    }
}

/// The event `m` raises, or `None` when nobody could be told.
pub fn envelope(m: &Match, grounds: &Grounds) -> Option<Envelope> {
    match m {
        Match::Reengagement {
            token,
            referral,
            case_id,
            owner,
            ..
        } => Some(Envelope {
            case_id: case_id.clone(),
            addressees: vec![owner.clone()],
            body: Some(Body::Reengagement(ReengagementAlert {
                subject_token: token.clone(),
                former_case_id: case_id.clone(),
                referral_envelope_id: referral.envelope_id.clone(),
                referring_agency: referral.agency.clone(),
            })),
            ..base(
                grounds,
                event_id("reengagement", &[&referral.envelope_id, case_id]),
                &[referral],
            )
        }),
        Match::Duplicate {
            token,
            referral,
            others,
            live,
        } => {
            let mut referrals: Vec<&Referral> = others.iter().collect();
            referrals.push(referral);
            let addressees: BTreeSet<String> = if live.is_empty() {
                referrals
                    .iter()
                    .flat_map(|r| r.recipients.iter().cloned())
                    .filter(|a| Service::of_sender(a).is_none())
                    .collect()
            } else {
                live.iter().map(|(_, owner)| owner.clone()).collect()
            };
            if addressees.is_empty() {
                return None;
            }
            let agencies: BTreeSet<String> = referrals.iter().map(|r| r.agency.clone()).collect();
            let case_ids: Vec<String> = live.iter().map(|(case, _)| case.clone()).collect();
            Some(Envelope {
                case_id: match case_ids.as_slice() {
                    [only] => only.clone(),
                    _ => String::new(),
                },
                addressees: addressees.into_iter().take(32).collect(),
                body: Some(Body::DuplicateSubject(DuplicateSubject {
                    subject_token: token.clone(),
                    referral_envelope_ids: referrals
                        .iter()
                        .map(|r| r.envelope_id.clone())
                        .collect(),
                    referring_agencies: agencies.into_iter().take(32).collect(),
                    case_ids,
                })),
                ..base(
                    grounds,
                    event_id("duplicate", &[&referral.envelope_id]),
                    &referrals,
                )
            })
        }
    }
}

/// The COMBINATION record of the match an event of ours was raised for:
/// which referrals and cases were linked, through which token, and who is
/// told. Its id follows from the event's, so it is recorded once.
pub fn combination(event: &Envelope) -> AuditRecord {
    let sender = Service::Linkage.sender().to_string();
    let (code, reason, tokens) = match &event.body {
        Some(Body::Reengagement(r)) => (
            "reengagement",
            format!(
                "referral {} from {} matched former subject of closed case {} under review",
                r.referral_envelope_id, r.referring_agency, r.former_case_id
            ),
            vec![r.subject_token.clone()],
        ),
        Some(Body::DuplicateSubject(d)) => (
            "duplicate_subject",
            format!(
                "referrals {} from {} matched{}",
                d.referral_envelope_ids.join(", "),
                d.referring_agencies.join(", "),
                if d.case_ids.is_empty() {
                    " each other".to_owned()
                } else {
                    format!(" live cases {}", d.case_ids.join(", "))
                }
            ),
            vec![d.subject_token.clone()],
        ),
        _ => ("", String::new(), vec![]),
    };
    AuditRecord {
        record_id: format!("combination:{}", event.id),
        operation: Operation::Combination as i32,
        decision: Decision::Accepted as i32,
        code: code.to_owned(),
        reason,
        purpose: event.purpose.clone(),
        legal_basis: event.legal_basis.clone(),
        time: Some(timestamp_now()),
        agency: sender.clone(),
        author: sender,
        recipients: event.addressees.clone(),
        envelope_id: event.id.clone(),
        case_id: event.case_id.clone(),
        kind: event.kind().to_owned(),
        classification: event.classification,
        subject_tokens: tokens,
        service: Service::Linkage.name().to_owned(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn referral(id: &str, agency: &str, classification: Classification) -> Referral {
        Referral {
            envelope_id: id.into(),
            agency: agency.into(),
            at: 1_000,
            recipients: vec!["police".into(), "council".into()],
            classification: classification as i32,
            caveats: vec!["UK-EYES-ONLY".into()],
        }
    }

    fn grounds() -> Grounds {
        Grounds {
            purpose: "counter-terrorism".into(),
            legal_basis: "DPA-2018-s35".into(),
        }
    }

    #[test]
    fn ids_are_deterministic_and_always_valid_envelope_ids() {
        assert_eq!(event_id("duplicate", &["ref-1"]), "duplicate:ref-1");
        let long = "x".repeat(64);
        let hashed = event_id("reengagement", &[&long, "CASE-1"]);
        assert!(
            hashed.starts_with("reengagement:h-") && hashed.len() <= 64,
            "{hashed}"
        );
        assert_eq!(hashed, event_id("reengagement", &[&long, "CASE-1"]));
        assert!(liaison_core::ids::validate_envelope_id(&hashed).is_ok());
    }

    #[test]
    fn a_reengagement_goes_to_the_owner_and_keeps_the_referrals_marking() {
        let m = Match::Reengagement {
            token: "st1:abc".into(),
            referral: referral("ref-2", "nhs-trust", Classification::Secret),
            case_id: "CASE-1".into(),
            owner: "police".into(),
            review_until: 2_000,
        };
        let Some(e) = envelope(&m, &grounds()) else {
            panic!("no envelope");
        };
        assert_eq!(e.id, "reengagement:ref-2:CASE-1");
        assert_eq!(e.addressees, ["police"]);
        assert_eq!(e.sender_agency, "liaison-linkage");
        assert_eq!(e.classification, Classification::Secret as i32);
        assert_eq!(e.handling_caveats, ["UK-EYES-ONLY"]);
        let record = combination(&e);
        assert_eq!(record.record_id, "combination:reengagement:ref-2:CASE-1");
        assert_eq!(record.operation, Operation::Combination as i32);
        assert_eq!(record.subject_tokens, ["st1:abc"]);
        assert!(record.reason.contains("ref-2") && record.reason.contains("CASE-1"));
    }

    #[test]
    fn a_duplicate_goes_to_live_owners_or_else_to_the_referrals_recipients() {
        let live = Match::Duplicate {
            token: "st1:abc".into(),
            referral: referral("ref-2", "nhs-trust", Classification::OfficialSensitive),
            others: vec![],
            live: vec![("CASE-1".into(), "council".into())],
        };
        let e = envelope(&live, &grounds());
        assert_eq!(
            e.as_ref().map(|e| e.addressees.clone()),
            Some(vec!["council".into()])
        );
        assert_eq!(e.as_ref().map(|e| e.case_id.as_str()), Some("CASE-1"));
        let referred = Match::Duplicate {
            token: "st1:abc".into(),
            referral: referral("ref-2", "nhs-trust", Classification::OfficialSensitive),
            others: vec![referral("ref-1", "school-a", Classification::Official)],
            live: vec![],
        };
        let Some(e) = envelope(&referred, &grounds()) else {
            panic!("no envelope");
        };
        assert_eq!(e.addressees, ["council", "police"]);
        assert_eq!(e.case_id, "");
        let Some(Body::DuplicateSubject(d)) = &e.body else {
            panic!("not a duplicate");
        };
        assert_eq!(d.referral_envelope_ids, ["ref-1", "ref-2"]);
        assert_eq!(d.referring_agencies, ["nhs-trust", "school-a"]);
        assert_eq!(e.classification, Classification::OfficialSensitive as i32);
    }
}
