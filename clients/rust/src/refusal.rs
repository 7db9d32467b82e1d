//! The gateway's refusals as a type a caller can `match` on: one variant per
//! refusal code of the wire contract (docs/wire-contract.md, "The verdict"),
//! each carrying the reason the gateway gave, and whether re-sending the same
//! envelope later can succeed.
//!
//! The list is the gateway's (`liaison_gateway::refusal::Refusal::codes()`),
//! copied here so that an agency's system does not depend on the gateway; a
//! unit test checks the two lists are the same. A code this client does not
//! know (a newer gateway) is kept as [`Refusal::Other`], never dropped.

/// Why the gateway refused an envelope: the verdict's `code`, with its `reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `too_large`: over the gateway's or the agency's size limit.
    #[error("too_large: {0}")]
    TooLarge(String),
    /// `invalid_agency_id`: the ingress subject's agency id is malformed.
    #[error("invalid_agency_id: {0}")]
    InvalidAgencyId(String),
    /// `unknown_agency`: the agency is not registered.
    #[error("unknown_agency: {0}")]
    UnknownAgency(String),
    /// `missing_token`: no token was sent.
    #[error("missing_token: {0}")]
    MissingToken(String),
    /// `bad_signature`: the signature does not verify with the key `kid` names.
    #[error("bad_signature: {0}")]
    BadSignature(String),
    /// `token_expired`: the token's `exp` has passed.
    #[error("token_expired: {0}")]
    TokenExpired(String),
    /// `invalid_token`: anything else wrong with the token (the reason says what).
    #[error("invalid_token: {0}")]
    InvalidToken(String),
    /// `token_replayed`: another token already carried this `jti`.
    #[error("token_replayed: {0}")]
    TokenReplayed(String),
    /// `rate_limited`: over the agency's rate; retry later with the same id.
    #[error("rate_limited: {0}")]
    RateLimited(String),
    /// `malformed_envelope`: the bytes are not a `liaison.v1.Envelope`.
    #[error("malformed_envelope: {0}")]
    MalformedEnvelope(String),
    /// `invalid_field`: a field is missing or outside the rules (the reason names it).
    #[error("invalid_field: {0}")]
    InvalidField(String),
    /// `policy_denied`: no information-sharing agreement permits this share.
    #[error("policy_denied: {0}")]
    PolicyDenied(String),
    /// `agency_suspended`: the partnership's operators suspended this agency
    /// (the reason says why); nothing it sends or reads is taken until it is
    /// resumed, and copies made for it are held.
    #[error("agency_suspended: {0}")]
    AgencySuspended(String),
    /// `no_recipient`: the share is one whose point is to reach other
    /// agencies, and none may receive it (the reason says why: its
    /// classification above every candidate's clearance, a caveat they are
    /// not registered for, no clause). Nothing was shared: change the share
    /// (its classification, caveats, purpose) rather than send it again.
    #[error("no_recipient: {0}")]
    NoRecipient(String),
    /// `unavailable`: the gateway could not store it now; retry with the same id.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// `invalid_reply_subject`: a request whose reply subject was not in the
    /// agency's own inbox (`_INBOX_<agency>.`). The gateway answers nowhere
    /// else, so this is seen only on the ledger, never by the sender (this
    /// client always uses its own inbox).
    #[error("invalid_reply_subject: {0}")]
    InvalidReplySubject(String),
    /// A code this client does not know (from a newer gateway).
    #[error("{code}: {reason}")]
    Other { code: String, reason: String },
}

impl Refusal {
    /// Every refusal code of `liaison.v1`, as the gateway sends them.
    pub const CODES: [&'static str; 16] = [
        "too_large",
        "invalid_agency_id",
        "unknown_agency",
        "missing_token",
        "bad_signature",
        "token_expired",
        "invalid_token",
        "token_replayed",
        "rate_limited",
        "malformed_envelope",
        "invalid_field",
        "policy_denied",
        "agency_suspended",
        "no_recipient",
        "unavailable",
        "invalid_reply_subject",
    ];

    /// The refusal a verdict's `code` and `reason` stand for.
    pub fn from_code(code: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        match code {
            "too_large" => Self::TooLarge(reason),
            "invalid_agency_id" => Self::InvalidAgencyId(reason),
            "unknown_agency" => Self::UnknownAgency(reason),
            "missing_token" => Self::MissingToken(reason),
            "bad_signature" => Self::BadSignature(reason),
            "token_expired" => Self::TokenExpired(reason),
            "invalid_token" => Self::InvalidToken(reason),
            "token_replayed" => Self::TokenReplayed(reason),
            "rate_limited" => Self::RateLimited(reason),
            "malformed_envelope" => Self::MalformedEnvelope(reason),
            "invalid_field" => Self::InvalidField(reason),
            "policy_denied" => Self::PolicyDenied(reason),
            "agency_suspended" => Self::AgencySuspended(reason),
            "no_recipient" => Self::NoRecipient(reason),
            "unavailable" => Self::Unavailable(reason),
            "invalid_reply_subject" => Self::InvalidReplySubject(reason),
            other => Self::Other {
                code: other.to_owned(),
                reason,
            },
        }
    }

    /// The machine-readable code, as in the verdict.
    pub fn code(&self) -> &str {
        match self {
            Self::TooLarge(_) => "too_large",
            Self::InvalidAgencyId(_) => "invalid_agency_id",
            Self::UnknownAgency(_) => "unknown_agency",
            Self::MissingToken(_) => "missing_token",
            Self::BadSignature(_) => "bad_signature",
            Self::TokenExpired(_) => "token_expired",
            Self::InvalidToken(_) => "invalid_token",
            Self::TokenReplayed(_) => "token_replayed",
            Self::RateLimited(_) => "rate_limited",
            Self::MalformedEnvelope(_) => "malformed_envelope",
            Self::InvalidField(_) => "invalid_field",
            Self::PolicyDenied(_) => "policy_denied",
            Self::AgencySuspended(_) => "agency_suspended",
            Self::NoRecipient(_) => "no_recipient",
            Self::Unavailable(_) => "unavailable",
            Self::InvalidReplySubject(_) => "invalid_reply_subject",
            Self::Other { code, .. } => code,
        }
    }

    /// The gateway's reason, naming what was wrong.
    pub fn reason(&self) -> &str {
        match self {
            Self::TooLarge(r)
            | Self::InvalidAgencyId(r)
            | Self::UnknownAgency(r)
            | Self::MissingToken(r)
            | Self::BadSignature(r)
            | Self::TokenExpired(r)
            | Self::InvalidToken(r)
            | Self::TokenReplayed(r)
            | Self::RateLimited(r)
            | Self::MalformedEnvelope(r)
            | Self::InvalidField(r)
            | Self::PolicyDenied(r)
            | Self::AgencySuspended(r)
            | Self::NoRecipient(r)
            | Self::Unavailable(r)
            | Self::InvalidReplySubject(r) => r,
            Self::Other { reason, .. } => reason,
        }
    }

    /// Whether the same envelope (same id) may be accepted if sent again
    /// later: only `unavailable` and `rate_limited`. Every other refusal
    /// repeats until the envelope, the token or the registration changes.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::RateLimited(_))
    }

    /// Whether the token was at fault, so the next attempt needs a new one
    /// (`token_expired`, `token_replayed`).
    pub fn needs_new_token(&self) -> bool {
        matches!(self, Self::TokenExpired(_) | Self::TokenReplayed(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_gateway_code_has_its_own_variant() {
        let gateway: Vec<&str> = liaison_gateway::refusal::Refusal::codes()
            .iter()
            .map(|(code, _)| *code)
            .collect();
        assert_eq!(
            gateway,
            Refusal::CODES,
            "the client's refusal codes must be the gateway's, in the same order"
        );
        let mut seen = std::collections::HashSet::new();
        for code in gateway {
            let refusal = Refusal::from_code(code, "why");
            assert!(
                !matches!(refusal, Refusal::Other { .. }),
                "{code} has no variant"
            );
            assert_eq!(refusal.code(), code);
            assert_eq!(refusal.reason(), "why");
            assert!(
                seen.insert(std::mem::discriminant(&refusal)),
                "{code} shares a variant"
            );
        }
    }

    #[test]
    fn unknown_codes_are_kept_and_only_two_codes_are_retried() {
        let other = Refusal::from_code("new_code", "from a newer gateway");
        assert_eq!(
            (other.code(), other.reason()),
            ("new_code", "from a newer gateway")
        );
        let retried: Vec<&str> = Refusal::CODES
            .into_iter()
            .filter(|c| Refusal::from_code(c, "").is_retryable())
            .collect();
        assert_eq!(retried, ["rate_limited", "unavailable"]);
        assert!(!other.is_retryable());
        assert_eq!(
            Refusal::from_code("policy_denied", "no clause").to_string(),
            "policy_denied: no clause"
        );
    }
}
