//! Why the gateway refuses an envelope: one enum, one machine-readable code per
//! kind, and a reason that names what was wrong. The sender gets both in its
//! [`Verdict`](liaison_proto::v1::Verdict); the audit ledger gets both too.

/// A refusal at ingress.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("envelope is {size} bytes, larger than the {limit} bytes allowed")]
    TooLarge { size: usize, limit: usize },
    #[error("{0}")]
    InvalidAgencyId(String),
    #[error("agency {0:?} is not registered")]
    UnknownAgency(String),
    #[error(
        "no token: send a signed JWT in the Liaison-Token header (NATS) or as Authorization: Bearer (HTTPS)"
    )]
    MissingToken,
    #[error("token signature is not accepted: {0}")]
    BadSignature(String),
    #[error("token has expired")]
    TokenExpired,
    #[error("invalid token: {0}")]
    BadToken(String),
    #[error("envelope is not a valid liaison.v1.Envelope: {0}")]
    Malformed(String),
    #[error("envelope field {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("token id (jti) {0:?} was already used by another token")]
    TokenReplayed(String),
    #[error(
        "agency {agency} is over its rate limit of {per_sec} envelopes/s (burst {burst}); retry later with the same id"
    )]
    RateLimited {
        agency: String,
        per_sec: u32,
        burst: u32,
    },
    #[error("{0}")]
    PolicyDenied(String),
    #[error("agency {agency} is suspended ({reason}); its copies are held until it is resumed")]
    AgencySuspended { agency: String, reason: String },
    /// A share whose point is to reach other agencies that none may receive:
    /// never answered `accepted` (the reason says why none may).
    #[error("no agency may receive it: {0}")]
    NoRecipient(String),
    #[error("gateway cannot store the envelope now (retry with the same id): {0}")]
    Unavailable(String),
    /// A request whose reply subject is not in the sender's own inbox
    /// (`_INBOX_<agency>.`): the gateway would otherwise write its answer,
    /// with its own rights, wherever the sender chose. Nothing is answered.
    #[error("{0}")]
    InvalidReply(String),
}

impl Refusal {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::InvalidAgencyId(_) => "invalid_agency_id",
            Self::UnknownAgency(_) => "unknown_agency",
            Self::MissingToken => "missing_token",
            Self::BadSignature(_) => "bad_signature",
            Self::TokenExpired => "token_expired",
            Self::BadToken(_) => "invalid_token",
            Self::TokenReplayed(_) => "token_replayed",
            Self::RateLimited { .. } => "rate_limited",
            Self::Malformed(_) => "malformed_envelope",
            Self::InvalidField { .. } => "invalid_field",
            Self::PolicyDenied(_) => "policy_denied",
            Self::AgencySuspended { .. } => "agency_suspended",
            Self::NoRecipient(_) => "no_recipient",
            Self::Unavailable(_) => "unavailable",
            Self::InvalidReply(_) => "invalid_reply_subject",
        }
    }

    /// The HTTP status the HTTPS door answers this refusal with; the NATS
    /// door answers with the same code and reason in the verdict.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::TooLarge { .. } => 413,
            Self::InvalidAgencyId(_)
            | Self::Malformed(_)
            | Self::InvalidField { .. }
            | Self::InvalidReply(_) => 400,
            Self::UnknownAgency(_)
            | Self::MissingToken
            | Self::BadSignature(_)
            | Self::TokenExpired
            | Self::BadToken(_)
            | Self::TokenReplayed(_) => 401,
            Self::PolicyDenied(_) | Self::AgencySuspended { .. } => 403,
            Self::NoRecipient(_) => 422,
            Self::RateLimited { .. } => 429,
            Self::Unavailable(_) => 503,
        }
    }

    /// The HTTP status of a refusal `code` (as a verdict carries it), from
    /// [`Refusal::codes`]; `None` if it is not a refusal code.
    pub fn http_status_of(code: &str) -> Option<u16> {
        Self::codes()
            .into_iter()
            .find(|(c, _)| *c == code)
            .map(|(_, status)| status)
    }

    /// Every refusal code with its HTTP status, for the wire contract and the
    /// OpenAPI document (one mapping, used by both doors).
    pub fn codes() -> [(&'static str, u16); 16] {
        [
            ("too_large", 413),
            ("invalid_agency_id", 400),
            ("unknown_agency", 401),
            ("missing_token", 401),
            ("bad_signature", 401),
            ("token_expired", 401),
            ("invalid_token", 401),
            ("token_replayed", 401),
            ("rate_limited", 429),
            ("malformed_envelope", 400),
            ("invalid_field", 400),
            ("policy_denied", 403),
            ("agency_suspended", 403),
            ("no_recipient", 422),
            ("unavailable", 503),
            ("invalid_reply_subject", 400),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_are_one_mapping() {
        let examples = [
            Refusal::TooLarge { size: 2, limit: 1 },
            Refusal::InvalidAgencyId(String::new()),
            Refusal::UnknownAgency(String::new()),
            Refusal::MissingToken,
            Refusal::BadSignature(String::new()),
            Refusal::TokenExpired,
            Refusal::BadToken(String::new()),
            Refusal::TokenReplayed(String::new()),
            Refusal::RateLimited {
                agency: String::new(),
                per_sec: 1,
                burst: 1,
            },
            Refusal::Malformed(String::new()),
            Refusal::InvalidField {
                field: "id",
                reason: String::new(),
            },
            Refusal::PolicyDenied(String::new()),
            Refusal::AgencySuspended {
                agency: String::new(),
                reason: String::new(),
            },
            Refusal::NoRecipient(String::new()),
            Refusal::Unavailable(String::new()),
            Refusal::InvalidReply(String::new()),
        ];
        let table = Refusal::codes();
        assert_eq!(examples.len(), table.len());
        for (refusal, (code, status)) in examples.iter().zip(table) {
            assert_eq!((refusal.code(), refusal.http_status()), (code, status));
            assert_eq!(Refusal::http_status_of(code), Some(status));
        }
        assert_eq!(Refusal::http_status_of("accepted"), None);
    }
}
