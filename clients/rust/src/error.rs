//! What can go wrong for an agency's system, as types a caller branches on:
//! the gateway refused the envelope ([`SendError::Refused`], with a
//! [`Refusal`] per code), the envelope was wrong before it left
//! ([`SendError::Invalid`]), or the bus failed ([`TransportError`]), kept
//! apart from refusals because only some of them may be retried.

use crate::envelope::InvalidEnvelope;
use crate::refusal::Refusal;
use crate::tokens::SigningError;
use std::time::Duration;

/// Why an envelope was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The gateway answered with a refusal.
    #[error("refused by the gateway: {0}")]
    Refused(Refusal),
    /// Found wrong before sending: the gateway would refuse it (`invalid_field`).
    #[error("not sent: {0}")]
    Invalid(#[from] InvalidEnvelope),
    /// The agency's key could not sign a token.
    #[error(transparent)]
    Token(#[from] SigningError),
    /// No verdict: the request timed out, nobody answered, or the reply was
    /// not a verdict.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Retried while the gateway was unavailable, rate-limiting or
    /// unreachable, until the deadline passed. The envelope may have been
    /// accepted meanwhile: re-send it later with the **same id**.
    #[error(
        "no final verdict for envelope {envelope_id} after {attempts} attempts in {:.1} s: {last}",
        elapsed.as_secs_f64()
    )]
    GaveUp {
        envelope_id: String,
        attempts: u32,
        elapsed: Duration,
        last: Box<SendError>,
    },
}

impl SendError {
    /// The refusal, if the gateway refused (also after retries gave up on one).
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Self::Refused(refusal) => Some(refusal),
            Self::GaveUp { last, .. } => last.refusal(),
            _ => None,
        }
    }

    /// Whether sending the same envelope again later may succeed: a
    /// retryable refusal or a transport failure that may be transient.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Refused(refusal) => refusal.is_retryable(),
            Self::Transport(transport) => transport.is_retryable(),
            Self::GaveUp { .. } => true,
            Self::Invalid(_) | Self::Token(_) => false,
        }
    }
}

/// A failure of the bus between the agency and the gateway.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No reply in time. The gateway may have accepted the envelope: re-send
    /// it with the same id (answered `DUPLICATE` if it was).
    #[error("no verdict from the gateway within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// Nothing listens on the ingress subject (no gateway is running): the
    /// request reached nobody.
    #[error("no gateway is listening on {0}")]
    NoResponders(String),
    /// The request could not be made (e.g. the connection is closed).
    #[error("cannot reach the gateway: {0}")]
    Request(String),
    /// NATS will not carry the request (over the server's `max_payload`,
    /// or an invalid subject): sending it again fails the same way.
    #[error("NATS will not carry the request: {0}")]
    Unsendable(String),
    /// The reply was not a `liaison.v1.Verdict`, or not a verdict this
    /// client understands.
    #[error("the gateway's reply is not a usable liaison.v1.Verdict: {0}")]
    BadReply(String),
}

impl TransportError {
    /// Timeouts, no responders and failed requests are worth retrying with
    /// the same id; a request NATS will not carry, or a reply that is not a
    /// verdict, is not.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Unsendable(_) | Self::BadReply(_))
    }
}

/// Why the client could not connect.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot connect to NATS at {url} as {user}: {reason}")]
    Nats {
        url: String,
        user: String,
        reason: String,
    },
    #[error("cannot read {what} {path}: {reason}")]
    File {
        what: &'static str,
        path: String,
        reason: String,
    },
    /// A `.creds` file that was read but whose user JWT has expired.
    #[error(
        "the user JWT in {path} expired {ago_secs} s ago (exp {expired_at}): ask the partnership for new credentials"
    )]
    CredsExpired {
        path: String,
        expired_at: i64,
        ago_secs: i64,
    },
    #[error("the agency's signing key: {0}")]
    Key(String),
}

/// Why the inbox could not be read or a delivery acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("reading the inbox: {0}")]
    Fetch(String),
    /// The gateway's answer was not a `liaison.v1.InboxCopies`.
    #[error("the inbox answer is unreadable: {reason}")]
    Undecodable { reason: String },
    /// The gateway refused the read (`malformed`, `unavailable`, …).
    #[error("the inbox read was refused: {code}: {reason}")]
    Refused { code: String, reason: String },
    #[error("acknowledging delivery of envelope {envelope_id}: {reason}")]
    Ack { envelope_id: String, reason: String },
}
