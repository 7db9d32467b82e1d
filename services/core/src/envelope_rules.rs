//! The field rules every envelope must meet before policy is asked, in one
//! place: the gateway refuses an envelope that breaks one (`invalid_field`),
//! and the agency client checks them before sending. DPA 2018 Part 3 asks for
//! purpose and legal basis on every disclosure; the rest bounds what goes
//! into subjects, keys and records.

use crate::AgencyId;
use crate::ids::validate_envelope_id;
use crate::participation::validate_case_id;
use liaison_proto::v1::{Classification, Envelope};

/// Longest free-text field (author, purpose, legal basis).
pub const MAX_TEXT: usize = 256;
/// Most caveats or addressees on one envelope.
pub const MAX_LIST: usize = 32;

/// The field that breaks a rule, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub reason: String,
}

fn field(field: &'static str, reason: impl Into<String>) -> FieldError {
    FieldError {
        field,
        reason: reason.into(),
    }
}

fn required(name: &'static str, value: &str) -> Result<(), FieldError> {
    if value.trim().is_empty() {
        return Err(field(name, "is required"));
    }
    if value.len() > MAX_TEXT {
        return Err(field(name, format!("is longer than {MAX_TEXT} bytes")));
    }
    Ok(())
}

/// Checks `envelope` as sent by `sender`; `mismatch` words the reason when
/// `sender_agency` names another agency.
pub fn check(
    envelope: &Envelope,
    sender: &AgencyId,
    mismatch: impl FnOnce(&AgencyId) -> String,
) -> Result<(), FieldError> {
    validate_envelope_id(&envelope.id).map_err(|e| field("id", e.reason))?;
    if envelope.sender_agency != sender.as_str() {
        return Err(field(
            "sender_agency",
            format!("is {:?} but {}", envelope.sender_agency, mismatch(sender)),
        ));
    }
    required("author", &envelope.author)?;
    required("purpose", &envelope.purpose)?;
    required("legal_basis", &envelope.legal_basis)?;
    if envelope.sent_at.is_none() {
        return Err(field("sent_at", "is required"));
    }
    match Classification::try_from(envelope.classification) {
        Ok(Classification::Unspecified) | Err(_) => {
            return Err(field(
                "classification",
                "must be OFFICIAL, OFFICIAL_SENSITIVE, SECRET or TOP_SECRET",
            ));
        }
        Ok(_) => {}
    }
    if envelope.body.is_none() {
        return Err(field("body", "is required (referral, caseUpdate or alert)"));
    }
    if !envelope.case_id.is_empty() {
        validate_case_id(&envelope.case_id).map_err(|e| field("case_id", e.reason))?;
    }
    if envelope.handling_caveats.len() > MAX_LIST {
        return Err(field(
            "handling_caveats",
            format!("has more than {MAX_LIST} entries"),
        ));
    }
    if envelope.addressees.len() > MAX_LIST {
        return Err(field(
            "addressees",
            format!("has more than {MAX_LIST} entries"),
        ));
    }
    for addressee in &envelope.addressees {
        AgencyId::parse(addressee).map_err(|e| field("addressees", e.to_string()))?;
    }
    if !envelope.traceparent.is_empty() {
        crate::trace::TraceParent::parse(&envelope.traceparent)
            .map_err(|e| field("traceparent", format!("is not a W3C traceparent: {e}")))?;
    }
    let kind = envelope.kind();
    let replies = liaison_proto::REPLY_KINDS.contains(&kind);
    if envelope.in_reply_to.is_empty() {
        if replies {
            return Err(field(
                "in_reply_to",
                format!("is required on a {kind}: the id of the envelope it answers"),
            ));
        }
    } else {
        if !replies {
            return Err(field(
                "in_reply_to",
                format!(
                    "is only for {}, not a {kind}",
                    liaison_proto::REPLY_KINDS.join(", ")
                ),
            ));
        }
        // The envelope it answers, by id — or SENDER/ID where agencies
        // chose the same id (ids are each sender's own).
        let (sender, id) = match envelope.in_reply_to.split_once('/') {
            Some((sender, id)) => (Some(sender), id),
            None => (None, envelope.in_reply_to.as_str()),
        };
        if let Some(sender) = sender {
            crate::ids::AgencyId::parse(sender)
                .map_err(|e| field("in_reply_to", format!("SENDER/ID: {}", e.reason)))?;
        }
        validate_envelope_id(id).map_err(|e| field("in_reply_to", e.reason))?;
    }
    if CASE_KINDS.contains(&kind) && envelope.case_id.is_empty() {
        return Err(field("case_id", format!("is required on a {kind}")));
    }
    body(envelope)
}

/// Kinds that are about one case, and must name it.
pub const CASE_KINDS: &[&str] = &[
    "case_update",
    "case_status",
    "participation",
    "reprioritisation",
    "risk_assessment",
    "information_request",
    "priority_changed",
    "review_due",
];

fn agencies(name: &'static str, ids: &[String]) -> Result<(), FieldError> {
    if ids.len() > MAX_LIST {
        return Err(field(name, format!("has more than {MAX_LIST} entries")));
    }
    for id in ids {
        AgencyId::parse(id).map_err(|e| field(name, e.to_string()))?;
    }
    Ok(())
}

fn code(name: &'static str, value: &str) -> Result<(), FieldError> {
    if value.len() > 64
        || !value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(field(
            name,
            "must be a code: at most 64 of a-z, 0-9 and '-'",
        ));
    }
    Ok(())
}

fn tokens(name: &'static str, values: &[String]) -> Result<(), FieldError> {
    if values.len() > MAX_LIST {
        return Err(field(name, format!("has more than {MAX_LIST} entries")));
    }
    for value in values {
        subject_token(name, value)?;
    }
    Ok(())
}

/// A pseudonymous subject token: 1 to 128 of A-Z, a-z, 0-9, '_', '-' and ':'.
fn subject_token(name: &'static str, value: &str) -> Result<(), FieldError> {
    if value.is_empty()
        || value.len() > 128
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':'))
    {
        return Err(field(
            name,
            "must be a subject token: 1 to 128 of A-Z, a-z, 0-9, '_', '-' and ':'",
        ));
    }
    Ok(())
}

/// The rules of each body kind.
fn body(envelope: &Envelope) -> Result<(), FieldError> {
    use liaison_proto::v1::envelope::Body;
    use liaison_proto::v1::{CaseStatus, correction_issued, risk_statement};
    match &envelope.body {
        Some(Body::CaseStatus(c)) => {
            if matches!(
                CaseStatus::try_from(c.status),
                Ok(CaseStatus::Unspecified) | Err(_)
            ) {
                return Err(field(
                    "case_status.status",
                    "must be REFERRED, TRIAGE, OPEN, UNDER_REVIEW or CLOSED",
                ));
            }
            code("case_status.unit", &c.unit)?;
            code("case_status.reason_code", &c.reason_code)?;
            if !c.referral_envelope_id.is_empty() {
                validate_envelope_id(&c.referral_envelope_id)
                    .map_err(|e| field("case_status.referral_envelope_id", e.reason))?;
            }
            tokens("case_status.subject_tokens", &c.subject_tokens)?;
        }
        Some(Body::Participation(p)) => {
            if p.added.is_empty() && p.removed.is_empty() {
                return Err(field("participation", "adds or removes no agency"));
            }
            agencies("participation.added", &p.added)?;
            agencies("participation.removed", &p.removed)?;
        }
        Some(Body::Reprioritisation(r)) => {
            if r.rank == 0 || r.rank > 100_000 {
                return Err(field(
                    "reprioritisation.rank",
                    "must be 1 (the top) or more",
                ));
            }
            code("reprioritisation.reason_code", &r.reason_code)?;
        }
        Some(Body::RiskAssessment(r)) => {
            let Some(subject) = &r.subject else {
                return Err(field("risk_assessment.subject", "is required"));
            };
            if !matches!(
                subject.category.as_str(),
                "suspect" | "victim" | "witness" | "person-at-risk"
            ) {
                return Err(field(
                    "risk_assessment.subject.category",
                    "must say whom the data is about (DPA 2018 s.38(3)): suspect, victim, witness or person-at-risk",
                ));
            }
            subject_token("risk_assessment.subject.token", &subject.token)?;
            if r.risk_level == 0 {
                return Err(field("risk_assessment.risk_level", "is required"));
            }
            if r.statements.len() > 256 {
                return Err(field(
                    "risk_assessment.statements",
                    "has more than 256 entries",
                ));
            }
            if r.statements.iter().any(|s| {
                matches!(
                    risk_statement::Basis::try_from(s.basis),
                    Ok(risk_statement::Basis::Unspecified) | Err(_)
                )
            }) {
                return Err(field(
                    "risk_assessment.statements.basis",
                    "must mark each statement FACT or ASSESSMENT (DPA 2018 s.38(2))",
                ));
            }
        }
        Some(Body::InformationRequest(r)) => {
            if envelope.addressees.is_empty() {
                return Err(field("addressees", "must name the agencies asked"));
            }
            if r.respond_by.is_none() {
                return Err(field("information_request.respond_by", "is required"));
            }
        }
        Some(Body::Correction(c)) => {
            if matches!(
                correction_issued::Action::try_from(c.action),
                Ok(correction_issued::Action::Unspecified) | Err(_)
            ) {
                return Err(field("correction.action", "must be CORRECTED or WITHDRAWN"));
            }
            code("correction.reason_code", &c.reason_code)?;
        }
        Some(Body::Referral(r)) => {
            if let Some(subject) = &r.subject
                && !subject.token.is_empty()
            {
                subject_token("referral.subject.token", &subject.token)?;
            }
        }
        Some(Body::Reengagement(r)) => {
            subject_token("reengagement.subject_token", &r.subject_token)?
        }
        Some(Body::DuplicateSubject(d)) => {
            subject_token("duplicate_subject.subject_token", &d.subject_token)?;
            agencies(
                "duplicate_subject.referring_agencies",
                &d.referring_agencies,
            )?;
        }
        Some(Body::RequestOverdue(r)) => agencies("request_overdue.unanswered", &r.unanswered)?,
        Some(Body::AlertEscalated(a)) => {
            agencies("alert_escalated.unacknowledged", &a.unacknowledged)?;
        }
        _ => {}
    }
    Ok(())
}
