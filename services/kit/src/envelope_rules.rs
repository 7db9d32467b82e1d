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
    Ok(())
}
