//! Checks on a decoded envelope before policy: the field rules every share
//! must meet ([`liaison_core::envelope_rules`], which the agency client checks
//! too), and that the envelope claims to come from the agency that sent it.

use crate::refusal::Refusal;
use liaison_core::AgencyId;
use liaison_core::envelope_rules;
use liaison_proto::v1::Envelope;

/// Checks `envelope` as sent by `agency`.
pub fn check(envelope: &Envelope, agency: &AgencyId) -> Result<(), Refusal> {
    envelope_rules::check(envelope, agency, |agency| {
        format!("the envelope came from {agency:?}")
    })
    .map_err(|e| Refusal::InvalidField {
        field: e.field,
        reason: e.reason,
    })
}
