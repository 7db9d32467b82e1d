//! The demo's envelopes: one builder per kind of share, each with the
//! purpose and legal basis its agreement names (deploy/policies). Ids are
//! deterministic (`demo-…`), so a re-run sends the same day.

use liaison_kit::AgencyId;
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::{
    AlertAcknowledged, CaseStatus, CaseStatusChanged, Classification, CorrectionIssued, Envelope,
    ErasureConfirmed, InformationProvided,
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
        seconds: i64::try_from(liaison_kit::time::unix_now().saturating_add(secs))
            .unwrap_or(i64::MAX),
        nanos: 0,
    }
}

/// Replies an agency's system sends on its own when a delivery asks for one.
pub fn reply(
    id: String,
    to: &Envelope,
    from: &AgencyId,
    purpose: &str,
    legal_basis: &str,
    body: Body,
) -> Envelope {
    Envelope {
        id,
        sender_agency: from.to_string(),
        author: format!("{from}-case-system"),
        sent_at: Some(liaison_kit::time::timestamp_now()),
        classification: Classification::OfficialSensitive as i32,
        purpose: purpose.into(),
        legal_basis: legal_basis.into(),
        case_id: to.case_id.clone(),
        in_reply_to: to.id.clone(),
        body: Some(body),
        ..Default::default()
    }
}

/// An agency's answer to an information request it was asked (ISA-CHANNEL-04):
/// each fills in what its records hold; the policy decides what the one who
/// asked sees.
pub fn answer(request: &Envelope, from: &AgencyId) -> Envelope {
    let mut provided = InformationProvided {
        answer: "Checked our records: contact in the last month, no new concern".into(),
        ..Default::default()
    };
    match from.as_str() {
        "nhs-trust" => provided.health_notes = "Attending outpatient appointments".into(),
        "council" => provided.social_care_notes = "Family known to early help".into(),
        "police" => provided.criminal_history = "No recorded offences".into(),
        _ => {}
    }
    reply(
        format!("{}-answer-{from}", request.id),
        request,
        from,
        "safeguarding",
        "DPA-2018-sch1-p18",
        Body::InformationResponse(provided),
    )
}

/// A business partner's acknowledgement of an alert it received (ISA-PSA-02):
/// the alerts service counts it, the issuing unit receives it.
pub fn acknowledgement(alert_id: &str, partner: &AgencyId) -> Envelope {
    let alert = Envelope {
        id: alert_id.to_owned(),
        ..Default::default()
    };
    let mut ack = reply(
        format!("{alert_id}-ack-{partner}"),
        &alert,
        partner,
        "protective-security",
        "DPA-2018-s35",
        Body::AlertAck(AlertAcknowledged {
            action: "actioned".into(),
        }),
    );
    ack.classification = Classification::Official as i32;
    ack
}

/// A recipient's confirmation that it erased an envelope withdrawn as
/// wrongly shared (ISA-ACCURACY-01, DPA 2018 s.38).
pub fn erasure(correction: &Envelope, from: &AgencyId) -> Envelope {
    reply(
        format!("{}-erased-{from}", correction.id),
        correction,
        from,
        "safeguarding",
        "DPA-2018-s35",
        Body::ErasureConfirmed(ErasureConfirmed { records_erased: 1 }),
    )
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
