//! Replies to what an agency received: answering an information request
//! (ISA-CHANNEL-04), acknowledging a protective-security alert (ISA-PSA-02)
//! and confirming the erasure of an envelope its sender withdrew as wrongly
//! shared (ISA-ACCURACY-01, DPA 2018 s.38). Each reply names the envelope it
//! answers (`in_reply_to`), keeps its case, and has an id derived from that
//! envelope's id and the replying agency, so sending the same reply twice —
//! a retry after a crash — is answered `DUPLICATE` and delivered once.
//!
//! Which replies are due is the caller's to decide (a request may wait for a
//! person to answer it); [`ReplyDue`] says what a delivery asks for.

use crate::client::AgencyClient;
use crate::envelope::{EnvelopeBuilder, InvalidEnvelope};
use liaison_proto::v1::correction_issued::Action;
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::{
    AlertAcknowledged, Classification, Envelope, ErasureConfirmed, InformationProvided,
};
use sha2::{Digest, Sha256};

/// The legal basis of an answer: safeguarding (DPA 2018 Sch.1 para 18), one
/// of those ISA-CHANNEL-04 allows.
pub const ANSWER_LEGAL_BASIS: &str = "DPA-2018-sch1-p18";

/// What a received envelope asks of the agency that received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyDue {
    /// An information request: answer it by its `respond_by`.
    Answer,
    /// An alert (or a reminder that one is unacknowledged): acknowledge it.
    Acknowledge,
    /// A withdrawal of an envelope shared in error: erase it, then confirm.
    ConfirmErasure,
}

impl ReplyDue {
    /// What `envelope` asks for, if anything, of a recipient.
    pub fn of(envelope: &Envelope) -> Option<Self> {
        match envelope.body.as_ref()? {
            Body::InformationRequest(_) => Some(Self::Answer),
            Body::Alert(_) | Body::AlertEscalated(_) => Some(Self::Acknowledge),
            Body::Correction(c) if c.action == Action::Withdrawn as i32 => {
                Some(Self::ConfirmErasure)
            }
            _ => None,
        }
    }
}

/// The id of `agency`'s `what` reply to envelope `to`: readable when it
/// fits the 64 characters an id may have, else a hash of the same parts.
pub fn reply_id(to: &str, what: &str, agency: &str) -> String {
    let id = format!("{to}-{what}-{agency}");
    if id.len() <= 64 {
        return id;
    }
    let digest = Sha256::digest(id.as_bytes());
    let hex: String = digest.iter().take(20).map(|b| format!("{b:02x}")).collect();
    format!("{what}-{hex}")
}

impl AgencyClient {
    fn reply(&self, author: &str, to: &Envelope, what: &str) -> EnvelopeBuilder {
        let builder = self
            .envelope(author)
            .id(reply_id(&to.id, what, self.agency().as_str()))
            .in_reply_to(to.id.clone())
            .purpose(to.purpose.clone())
            .legal_basis(to.legal_basis.clone());
        if to.case_id.is_empty() {
            builder
        } else {
            builder.case_id(to.case_id.clone())
        }
    }

    /// An answer to the information `request` this agency was asked: what
    /// its records hold, each field under its data label (the policy decides
    /// what the one who asked sees).
    pub fn answer(
        &self,
        author: &str,
        request: &Envelope,
        provided: InformationProvided,
    ) -> Result<Envelope, InvalidEnvelope> {
        self.reply(author, request, "answer")
            .classification(
                Classification::try_from(request.classification)
                    .unwrap_or(Classification::OfficialSensitive),
            )
            .legal_basis(ANSWER_LEGAL_BASIS)
            .body(Body::InformationResponse(provided))
            .build()
    }

    /// An acknowledgement of `alert` (an alert, or the escalation that
    /// reminds of one: the acknowledgement is of the alert itself), with the
    /// `action` taken, e.g. "actioned".
    pub fn acknowledge(
        &self,
        author: &str,
        alert: &Envelope,
        action: &str,
    ) -> Result<Envelope, InvalidEnvelope> {
        let alert_id = match alert.body {
            Some(Body::AlertEscalated(_)) => alert.in_reply_to.clone(),
            _ => alert.id.clone(),
        };
        let of = Envelope {
            id: alert_id,
            ..Default::default()
        };
        self.reply(author, &of, "ack")
            .classification(Classification::Official)
            .purpose("protective-security")
            .legal_basis("DPA-2018-s35")
            .body(Body::AlertAck(AlertAcknowledged {
                action: action.to_owned(),
            }))
            .build()
    }

    /// A confirmation that this agency erased what `correction` withdrew.
    pub fn confirm_erasure(
        &self,
        author: &str,
        correction: &Envelope,
        records_erased: u32,
    ) -> Result<Envelope, InvalidEnvelope> {
        self.reply(author, correction, "erased")
            .classification(Classification::OfficialSensitive)
            .legal_basis("DPA-2018-s35")
            .body(Body::ErasureConfirmed(ErasureConfirmed { records_erased }))
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_ids_fit_and_stay_the_same() {
        assert_eq!(
            reply_id("req-1", "answer", "nhs-trust"),
            "req-1-answer-nhs-trust"
        );
        let long = "x".repeat(64);
        let id = reply_id(&long, "answer", "nhs-trust");
        assert!(id.len() <= 64 && id.starts_with("answer-"), "{id}");
        assert_eq!(id, reply_id(&long, "answer", "nhs-trust"));
        assert_ne!(id, reply_id(&long, "answer", "council"));
    }

    #[test]
    fn what_a_delivery_asks_for() {
        let with = |body| Envelope {
            body: Some(body),
            ..Default::default()
        };
        assert_eq!(
            ReplyDue::of(&with(Body::InformationRequest(Default::default()))),
            Some(ReplyDue::Answer)
        );
        assert_eq!(
            ReplyDue::of(&with(Body::AlertEscalated(Default::default()))),
            Some(ReplyDue::Acknowledge)
        );
        let withdrawn = liaison_proto::v1::CorrectionIssued {
            action: Action::Withdrawn as i32,
            ..Default::default()
        };
        assert_eq!(
            ReplyDue::of(&with(Body::Correction(withdrawn))),
            Some(ReplyDue::ConfirmErasure)
        );
        assert_eq!(
            ReplyDue::of(&with(Body::Correction(Default::default()))),
            None
        );
        assert_eq!(
            ReplyDue::of(&with(Body::CaseUpdate(Default::default()))),
            None
        );
    }
}
