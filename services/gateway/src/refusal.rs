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
    #[error("no token: send a signed JWT in the Liaison-Token header")]
    MissingToken,
    #[error("token signature does not verify with the agency's registered key")]
    BadSignature,
    #[error("token has expired")]
    TokenExpired,
    #[error("invalid token: {0}")]
    BadToken(String),
    #[error("envelope is not a valid liaison.v1.Envelope: {0}")]
    Malformed(String),
    #[error("envelope field {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("{0}")]
    PolicyDenied(String),
    #[error("gateway cannot store the envelope now (retry with the same id): {0}")]
    Unavailable(String),
}

impl Refusal {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::InvalidAgencyId(_) => "invalid_agency_id",
            Self::UnknownAgency(_) => "unknown_agency",
            Self::MissingToken => "missing_token",
            Self::BadSignature => "bad_signature",
            Self::TokenExpired => "token_expired",
            Self::BadToken(_) => "invalid_token",
            Self::Malformed(_) => "malformed_envelope",
            Self::InvalidField { .. } => "invalid_field",
            Self::PolicyDenied(_) => "policy_denied",
            Self::Unavailable(_) => "unavailable",
        }
    }
}
