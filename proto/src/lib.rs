//! `liaison.v1`: the protobuf schema every Liaison service and agency shares.
//!
//! Owns the generated message types, the descriptor pool used for reflection,
//! the data-label index (which field carries which [`v1::DataLabel`]) and the
//! protobuf JSON mapping and its JSON Schemas. It does not decide who may see what: that is the
//! gateway's policy.

pub mod compat;
pub mod json;
pub mod json_schema;
pub mod labels;

/// Generated prost types for the `liaison.v1` package.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/liaison.v1.rs"));
}

use prost_reflect::{DescriptorPool, MessageDescriptor};
use std::sync::LazyLock;

/// The encoded `FileDescriptorSet` of `liaison.v1` and its imports.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/liaison_v1.descriptor.bin"));

static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    // The bytes are produced by our own build script from the same schema the
    // types come from: a failure here is a build bug, not bad input.
    #[allow(clippy::expect_used)]
    DescriptorPool::decode(FILE_DESCRIPTOR_SET)
        .expect("built-in liaison.v1 descriptor set is valid")
});

/// The descriptor pool holding `liaison.v1` and its imports.
pub fn pool() -> &'static DescriptorPool {
    &POOL
}

/// Descriptor of a `liaison.v1` message by its short name, e.g. `"Envelope"`.
///
/// # Panics
/// Only if `name` is not a message of the schema: callers pass literals.
pub fn message(name: &str) -> MessageDescriptor {
    #[allow(clippy::expect_used)]
    pool()
        .get_message_by_name(&format!("liaison.v1.{name}"))
        .expect("message exists in liaison.v1")
}

impl v1::Envelope {
    /// The body kind as used in subjects, policies and audit (the body
    /// field's name: `referral`, `case_update`, `alert`, ...), or `none`.
    pub fn kind(&self) -> &'static str {
        self.body.as_ref().map_or("none", v1::envelope::Body::kind)
    }

    /// Pseudonymous subject tokens the body refers to.
    pub fn subject_tokens(&self) -> Vec<String> {
        use v1::envelope::Body;
        let person = |p: &Option<v1::Person>| p.iter().map(|p| p.token.clone()).collect();
        let tokens: Vec<String> = match &self.body {
            Some(Body::Referral(r)) => person(&r.subject),
            Some(Body::CaseUpdate(c)) => person(&c.subject),
            Some(Body::RiskAssessment(r)) => person(&r.subject),
            Some(Body::CaseStatus(c)) => c.subject_tokens.clone(),
            Some(Body::Reengagement(r)) => vec![r.subject_token.clone()],
            Some(Body::DuplicateSubject(d)) => vec![d.subject_token.clone()],
            Some(Body::ErasureRequired(e)) => vec![e.subject_token.clone()],
            _ => vec![],
        };
        tokens.into_iter().filter(|t| !t.is_empty()).collect()
    }
}

/// Every body kind, as [`v1::Envelope::kind`] names it.
pub const KINDS: &[&str] = &[
    "referral",
    "case_update",
    "alert",
    "case_status",
    "participation",
    "reprioritisation",
    "risk_assessment",
    "information_request",
    "information_response",
    "correction",
    "erasure_confirmed",
    "alert_ack",
    "reengagement",
    "duplicate_subject",
    "priority_changed",
    "review_due",
    "request_overdue",
    "alert_escalated",
    "erasure_required",
];

/// Kinds only Liaison's own services send (through the internal door).
pub const SYSTEM_KINDS: &[&str] = &[
    "reengagement",
    "duplicate_subject",
    "priority_changed",
    "review_due",
    "request_overdue",
    "alert_escalated",
    // Sent by the gateway itself on an erasure, never through a door.
    "erasure_required",
];

/// Kinds that must name, in `in_reply_to`, the envelope they answer.
pub const REPLY_KINDS: &[&str] = &[
    "information_response",
    "correction",
    "erasure_confirmed",
    "alert_ack",
    "request_overdue",
    "alert_escalated",
];

impl v1::envelope::Body {
    /// An empty body of `kind` (as [`v1::Envelope::kind`] names it).
    pub fn empty(kind: &str) -> Option<Self> {
        use v1::envelope::Body;
        Some(match kind {
            "referral" => Body::Referral(Default::default()),
            "case_update" => Body::CaseUpdate(Default::default()),
            "alert" => Body::Alert(Default::default()),
            "case_status" => Body::CaseStatus(Default::default()),
            "participation" => Body::Participation(Default::default()),
            "reprioritisation" => Body::Reprioritisation(Default::default()),
            "risk_assessment" => Body::RiskAssessment(Default::default()),
            "information_request" => Body::InformationRequest(Default::default()),
            "information_response" => Body::InformationResponse(Default::default()),
            "correction" => Body::Correction(Default::default()),
            "erasure_confirmed" => Body::ErasureConfirmed(Default::default()),
            "alert_ack" => Body::AlertAck(Default::default()),
            "reengagement" => Body::Reengagement(Default::default()),
            "duplicate_subject" => Body::DuplicateSubject(Default::default()),
            "priority_changed" => Body::PriorityChanged(Default::default()),
            "review_due" => Body::ReviewDue(Default::default()),
            "request_overdue" => Body::RequestOverdue(Default::default()),
            "alert_escalated" => Body::AlertEscalated(Default::default()),
            "erasure_required" => Body::ErasureRequired(Default::default()),
            _ => return None,
        })
    }

    /// The kind of this body (the oneof field's name).
    pub fn kind(&self) -> &'static str {
        use v1::envelope::Body;
        match self {
            Body::Referral(_) => "referral",
            Body::CaseUpdate(_) => "case_update",
            Body::Alert(_) => "alert",
            Body::CaseStatus(_) => "case_status",
            Body::Participation(_) => "participation",
            Body::Reprioritisation(_) => "reprioritisation",
            Body::RiskAssessment(_) => "risk_assessment",
            Body::InformationRequest(_) => "information_request",
            Body::InformationResponse(_) => "information_response",
            Body::Correction(_) => "correction",
            Body::ErasureConfirmed(_) => "erasure_confirmed",
            Body::AlertAck(_) => "alert_ack",
            Body::Reengagement(_) => "reengagement",
            Body::DuplicateSubject(_) => "duplicate_subject",
            Body::PriorityChanged(_) => "priority_changed",
            Body::ReviewDue(_) => "review_due",
            Body::RequestOverdue(_) => "request_overdue",
            Body::AlertEscalated(_) => "alert_escalated",
            Body::ErasureRequired(_) => "erasure_required",
        }
    }
}

impl v1::DataLabel {
    /// The label's short name as used in policies: `identity`, `health`, ...
    pub fn short_name(self) -> &'static str {
        use v1::DataLabel as L;
        match self {
            L::Unspecified => "unspecified",
            L::Identity => "identity",
            L::Health => "health",
            L::SocialCare => "social-care",
            L::Education => "education",
            L::Criminal => "criminal",
            L::Intelligence => "intelligence",
            L::Location => "location",
            L::Safeguarding => "safeguarding",
        }
    }

    /// Every real label (not `Unspecified`).
    pub fn all() -> impl Iterator<Item = v1::DataLabel> {
        (1..).map_while(|n| v1::DataLabel::try_from(n).ok())
    }
}

#[cfg(test)]
mod kind_tests {
    use super::*;

    #[test]
    fn kinds_are_the_body_oneof_field_names() {
        let envelope = message("Envelope");
        let mut fields: Vec<String> = envelope
            .oneofs()
            .filter(|o| o.name() == "body")
            .flat_map(|o| o.fields().map(|f| f.name().to_owned()).collect::<Vec<_>>())
            .collect();
        fields.sort();
        let mut kinds: Vec<String> = KINDS.iter().map(|k| (*k).to_owned()).collect();
        kinds.sort();
        assert_eq!(fields, kinds);
        for kind in SYSTEM_KINDS.iter().chain(REPLY_KINDS) {
            assert!(KINDS.contains(kind), "{kind}");
        }
        for kind in KINDS {
            let body = v1::envelope::Body::empty(kind);
            assert_eq!(body.as_ref().map(v1::envelope::Body::kind), Some(*kind));
        }
    }
}
