//! The demo's envelopes: one builder per kind of share, each with the
//! purpose and legal basis its agreement names (deploy/policies). Ids are
//! deterministic (`demo-…`), so a re-run sends the same day.

use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::{
    CaseStatus, CaseStatusChanged, Classification, CorrectionIssued, Envelope, InformationProvided,
};
use prost_types::Timestamp;

/// One planned send: who sends what.
#[derive(Debug, Clone)]
pub struct Contribution {
    pub sender: &'static str,
    pub envelope: Envelope,
}

/// An envelope from `sender`; `sent_at` is stamped when it is sent.
pub fn envelope(
    id: String,
    sender: &str,
    purpose: &str,
    legal_basis: &str,
    classification: Classification,
    case_id: &str,
    body: Body,
) -> Envelope {
    Envelope {
        id,
        sender_agency: sender.into(),
        author: format!("{sender}-case-system"),
        classification: classification as i32,
        purpose: purpose.into(),
        legal_basis: legal_basis.into(),
        case_id: case_id.into(),
        body: Some(body),
        ..Default::default()
    }
}

/// A contribution of `sender`.
pub fn from(sender: &'static str, envelope: Envelope) -> Contribution {
    Contribution { sender, envelope }
}

/// A case record change by its owner (ISA-CHANNEL-02).
pub fn case_change(id: String, owner: &'static str, case_id: &str, body: Body) -> Contribution {
    from(
        owner,
        envelope(
            id,
            owner,
            "counter-terrorism",
            "CTSA-2015-s36",
            Classification::OfficialSensitive,
            case_id,
            body,
        ),
    )
}

/// A move of the case through its lifecycle.
pub fn status(to: CaseStatus, unit: &str, reason: &str) -> CaseStatusChanged {
    CaseStatusChanged {
        status: to as i32,
        unit: unit.into(),
        reason_code: reason.into(),
        ..Default::default()
    }
}

/// A time `secs` from now.
pub fn in_secs(secs: u64) -> Timestamp {
    Timestamp {
        seconds: i64::try_from(liaison_core::time::unix_now().saturating_add(secs))
            .unwrap_or(i64::MAX),
        nanos: 0,
    }
}

/// What an agency's records say in answer to an information request
/// (ISA-CHANNEL-04): each fills in what it holds; the policy decides what
/// the one who asked sees.
pub fn answer(agency: &str) -> InformationProvided {
    let mut provided = InformationProvided {
        answer: "Checked our records: contact in the last month, no new concern".into(),
        ..Default::default()
    };
    match agency {
        "nhs-trust" => provided.health_notes = "Attending outpatient appointments".into(),
        "council" => provided.social_care_notes = "Family known to early help".into(),
        "police" => provided.criminal_history = "No recorded offences".into(),
        _ => {}
    }
    provided
}

/// The sender's correction of an envelope it sent: corrected, or withdrawn
/// as wrongly shared.
pub fn correction(
    id: String,
    sender: &'static str,
    of: &str,
    withdrawn: bool,
    legal_basis: &str,
) -> Contribution {
    let action = if withdrawn {
        liaison_proto::v1::correction_issued::Action::Withdrawn
    } else {
        liaison_proto::v1::correction_issued::Action::Corrected
    };
    let mut envelope = envelope(
        id,
        sender,
        "safeguarding",
        legal_basis,
        Classification::OfficialSensitive,
        "",
        Body::Correction(CorrectionIssued {
            action: action as i32,
            reason_code: if withdrawn {
                "shared-in-error".into()
            } else {
                "date-of-birth-corrected".into()
            },
            correction: if withdrawn {
                String::new()
            } else {
                "The date of birth was mistyped; the referral is otherwise right".into()
            },
        }),
    );
    envelope.in_reply_to = of.to_owned();
    from(sender, envelope)
}
