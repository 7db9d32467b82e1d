//! Building envelopes an agency sends: [`EnvelopeBuilder`] fills what the
//! client can know (`id`, a UUID v4 that is the idempotency key;
//! `sender_agency`; `author`; `sent_at`), [`complete`] fills the same fields
//! of an envelope read from elsewhere (a JSON file), and [`check`] refuses
//! locally what the gateway would refuse cheaply as `invalid_field`, before
//! anything is sent.
//!
//! What only the gateway knows is not checked here: the vocabulary of
//! purposes, legal bases and caveats, the agency's size limit, and the policy.

use liaison_core::AgencyId;
use liaison_core::envelope_rules;
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::{AlertIssued, CaseUpdated, Classification, Envelope, ReferralMade};
use prost_types::Timestamp;

/// An envelope the gateway would refuse (`invalid_field`), found before sending.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("envelope field {field}: {reason}")]
pub struct InvalidEnvelope {
    /// The field, named as in the schema (`legal_basis`, `case_id`, ...).
    pub field: &'static str,
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> InvalidEnvelope {
    InvalidEnvelope {
        field,
        reason: reason.into(),
    }
}

/// A new envelope id: a UUID v4, the idempotency key of one share.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Fills the fields of `envelope` that are empty and that the sending system
/// knows: `id` (a new UUID), `sender_agency`, `author` and `sent_at` (now).
/// Fields already set are kept — in particular the id, so that a re-sent
/// envelope keeps its idempotency key.
pub fn complete(envelope: &mut Envelope, sender: &AgencyId, author: &str) {
    if envelope.id.is_empty() {
        envelope.id = new_id();
    }
    if envelope.sender_agency.is_empty() {
        envelope.sender_agency = sender.as_str().to_owned();
    }
    if envelope.author.is_empty() {
        envelope.author = author.to_owned();
    }
    if envelope.sent_at.is_none() {
        envelope.sent_at = Some(liaison_core::time::timestamp_now());
    }
}

/// Checks `envelope` as `sender` would send it, as the gateway does before
/// its policy ([`liaison_core::envelope_rules`]: the id's format, the sender,
/// the required fields, the classification, the body, the case id, the
/// bounded lists), and one rule more: a case update needs its case id, as
/// the wire contract says.
pub fn check(envelope: &Envelope, sender: &AgencyId) -> Result<(), InvalidEnvelope> {
    envelope_rules::check(envelope, sender, |sender| {
        format!("this client sends as {sender:?}")
    })
    .map_err(|e| invalid(e.field, e.reason))?;
    if matches!(envelope.body, Some(Body::CaseUpdate(_))) && envelope.case_id.is_empty() {
        return Err(invalid("case_id", "is required on a case update"));
    }
    Ok(())
}

/// Builds an envelope for one sender and author. The classification, purpose,
/// legal basis and body must be given; [`build`](Self::build) checks the
/// result as the gateway would.
///
/// ```
/// use liaison_client::EnvelopeBuilder;
/// use liaison_core::AgencyId;
/// use liaison_proto::v1::{CaseUpdated, Classification};
///
/// let council = AgencyId::parse("council").unwrap();
/// let envelope = EnvelopeBuilder::new(&council, "council-case-system")
///     .classification(Classification::OfficialSensitive)
///     .purpose("safeguarding")
///     .legal_basis("CTSA-2015-s36")
///     .case_id("CASE-0042")
///     .case_update(CaseUpdated {
///         update_type: "assessment".into(),
///         summary: "Home visit completed; family engaging".into(),
///         ..Default::default()
///     })
///     .build()
///     .unwrap();
/// assert_eq!(envelope.sender_agency, "council");
/// assert_eq!(envelope.id.len(), 36); // a UUID
/// ```
#[derive(Debug, Clone)]
pub struct EnvelopeBuilder {
    envelope: Envelope,
    sender: AgencyId,
}

impl EnvelopeBuilder {
    /// A new envelope from `sender`, written by `author` (the token's subject),
    /// with a fresh id and `sent_at` now.
    pub fn new(sender: &AgencyId, author: impl Into<String>) -> Self {
        let mut envelope = Envelope {
            author: author.into(),
            ..Default::default()
        };
        complete(&mut envelope, sender, "");
        Self {
            envelope,
            sender: sender.clone(),
        }
    }

    /// Uses `id` as the idempotency key instead of a new UUID (e.g. the case
    /// system's own record id, so a re-send after a crash is a duplicate).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.envelope.id = id.into();
        self
    }

    pub fn sent_at(mut self, at: Timestamp) -> Self {
        self.envelope.sent_at = Some(at);
        self
    }

    pub fn classification(mut self, classification: Classification) -> Self {
        self.envelope.classification = classification as i32;
        self
    }

    /// Adds a handling caveat, e.g. `UK-EYES-ONLY`.
    pub fn caveat(mut self, caveat: impl Into<String>) -> Self {
        self.envelope.handling_caveats.push(caveat.into());
        self
    }

    pub fn purpose(mut self, purpose: impl Into<String>) -> Self {
        self.envelope.purpose = purpose.into();
        self
    }

    pub fn legal_basis(mut self, legal_basis: impl Into<String>) -> Self {
        self.envelope.legal_basis = legal_basis.into();
        self
    }

    pub fn case_id(mut self, case_id: impl Into<String>) -> Self {
        self.envelope.case_id = case_id.into();
        self
    }

    /// Addresses an agency directly (it still needs a clause that lets it receive).
    pub fn addressee(mut self, agency: &AgencyId) -> Self {
        self.envelope.addressees.push(agency.as_str().to_owned());
        self
    }

    /// The W3C `traceparent` of the sending system's trace.
    pub fn traceparent(mut self, traceparent: impl Into<String>) -> Self {
        self.envelope.traceparent = traceparent.into();
        self
    }

    pub fn referral(mut self, referral: ReferralMade) -> Self {
        self.envelope.body = Some(Body::Referral(referral));
        self
    }

    pub fn case_update(mut self, update: CaseUpdated) -> Self {
        self.envelope.body = Some(Body::CaseUpdate(update));
        self
    }

    pub fn alert(mut self, alert: AlertIssued) -> Self {
        self.envelope.body = Some(Body::Alert(alert));
        self
    }

    /// Any body: a case status change, a participation change, a risk
    /// assessment, an information request or answer, a correction, ...
    pub fn body(mut self, body: Body) -> Self {
        self.envelope.body = Some(body);
        self
    }

    /// The envelope this one answers, acknowledges, corrects or confirms
    /// the erasure of.
    pub fn in_reply_to(mut self, envelope_id: impl Into<String>) -> Self {
        self.envelope.in_reply_to = envelope_id.into();
        self
    }

    /// The envelope, if the gateway's cheap checks would pass it.
    pub fn build(self) -> Result<Envelope, InvalidEnvelope> {
        check(&self.envelope, &self.sender)?;
        Ok(self.envelope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn council() -> AgencyId {
        AgencyId::parse("council").unwrap_or_else(|e| panic!("{e}"))
    }

    fn update() -> EnvelopeBuilder {
        EnvelopeBuilder::new(&council(), "council-dsl")
            .classification(Classification::OfficialSensitive)
            .purpose("safeguarding")
            .legal_basis("CTSA-2015-s36")
            .case_id("CASE-1")
            .case_update(CaseUpdated::default())
    }

    #[test]
    fn a_complete_envelope_builds_with_a_uuid_id() {
        let envelope = update().build().unwrap_or_else(|e| panic!("{e}"));
        assert!(
            uuid::Uuid::parse_str(&envelope.id).is_ok(),
            "{}",
            envelope.id
        );
        assert_eq!(envelope.sender_agency, "council");
        assert_eq!(envelope.author, "council-dsl");
        assert!(envelope.sent_at.is_some());
        let again = update().build().unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(envelope.id, again.id, "each envelope gets its own id");
    }

    #[test]
    fn what_the_gateway_would_refuse_is_refused_naming_the_field() {
        let cases: Vec<(EnvelopeBuilder, &str)> = vec![
            (update().id(""), "id"),
            (update().id("has space"), "id"),
            (update().id("x".repeat(65)), "id"),
            (update().purpose(" "), "purpose"),
            (update().legal_basis(""), "legal_basis"),
            (
                update().classification(Classification::Unspecified),
                "classification",
            ),
            (update().case_id(""), "case_id"),
            (update().case_id("CASE 1"), "case_id"),
            (
                EnvelopeBuilder::new(&council(), "")
                    .classification(Classification::Official)
                    .purpose("safeguarding")
                    .legal_basis("CTSA-2015-s36")
                    .referral(ReferralMade::default()),
                "author",
            ),
            (
                EnvelopeBuilder::new(&council(), "a")
                    .classification(Classification::Official)
                    .purpose("safeguarding")
                    .legal_basis("CTSA-2015-s36"),
                "body",
            ),
        ];
        for (builder, field) in cases {
            let error = builder.build().err();
            assert_eq!(error.as_ref().map(|e| e.field), Some(field), "{error:?}");
        }
        let mut other_sender = update().build().unwrap_or_else(|e| panic!("{e}"));
        other_sender.sender_agency = "police".into();
        assert_eq!(
            check(&other_sender, &council()).map_err(|e| e.field),
            Err("sender_agency")
        );
        let mut bad_addressee = update().build().unwrap_or_else(|e| panic!("{e}"));
        bad_addressee.addressees = vec!["Police.*".into()];
        assert_eq!(
            check(&bad_addressee, &council()).map_err(|e| e.field),
            Err("addressees")
        );
    }

    #[test]
    fn complete_keeps_what_is_set() {
        let mut envelope = Envelope {
            id: "kept-id".into(),
            ..Default::default()
        };
        complete(&mut envelope, &council(), "council-case-system");
        assert_eq!(envelope.id, "kept-id");
        assert_eq!(envelope.sender_agency, "council");
        assert_eq!(envelope.author, "council-case-system");
        assert!(envelope.sent_at.is_some());
    }
}
