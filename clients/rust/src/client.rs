//! [`AgencyClient`]: one agency connected to the partnership. It sends
//! envelopes to the agency's ingress subject with a token signed by the
//! agency's key and waits for the gateway's verdict:
//!
//! - [`submit`](AgencyClient::submit) checks the envelope locally, retries
//!   what may succeed later (same id, backoff, deadline) and answers a
//!   [`Receipt`] or a typed [`SendError`];
//! - [`send`](AgencyClient::send) and [`send_raw`](AgencyClient::send_raw)
//!   make one attempt and return the verdict as it is (tools and tests);
//! - [`send_until_answered`](AgencyClient::send_until_answered) retries like
//!   `submit` but returns the final verdict, refusals included.
//!
//! Each send of an envelope (all its attempts) is one `envelope.send` span,
//! which starts the share's trace — or continues the caller's: the current
//! span's, or the W3C context in the envelope's `traceparent` field — and
//! whose context goes in the request's `traceparent` header and, the same,
//! in the envelope's `traceparent` field (docs/decisions/0009-tracing.md).
//! [`send_raw`](AgencyClient::send_raw) sends its bytes as they are.
//!
//! Reading the inbox is in [`crate::inbox`].

use crate::connect::{NatsAuth, NatsOptions, connect};
use crate::envelope::{EnvelopeBuilder, check};
use crate::error::{ConnectError, SendError, TransportError};
use crate::refusal::Refusal;
use crate::retry::RetryPolicy;
use crate::tokens::{SigningError, Tokens};
use async_nats::HeaderMap;
use bytes::Bytes;

use liaison_core::hop::Hop;
use liaison_core::tokens::Signer;
use liaison_core::trace::{self, TraceContext};
use liaison_core::{AgencyId, subjects};
use liaison_proto::v1::verdict::Outcome;
use liaison_proto::v1::{Envelope, Verdict};
use prost::Message as _;
use std::path::Path;
use std::time::{Duration, Instant};
use tracing::Instrument as _;

/// How long to wait for the gateway's verdict on one attempt.
pub const VERDICT_TIMEOUT: Duration = Duration::from_secs(10);
/// The gateway's default token audience (`gateway.audience`).
pub const DEFAULT_AUDIENCE: &str = "liaison-gateway";

/// What the gateway answered to an envelope it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub envelope_id: String,
    /// Accepted earlier under the same id: this send delivered nothing new.
    pub duplicate: bool,
    /// The agencies that receive a copy.
    pub recipients: Vec<String>,
    /// The ISA clauses that permitted sending.
    pub policy_ids: Vec<String>,
}

impl Receipt {
    /// The receipt of a verdict, or the refusal it carries.
    pub fn from_verdict(verdict: Verdict) -> Result<Self, SendError> {
        let duplicate = match Outcome::try_from(verdict.outcome) {
            Ok(Outcome::Accepted) => false,
            Ok(Outcome::Duplicate) => true,
            Ok(Outcome::Refused) => {
                return Err(SendError::Refused(Refusal::from_code(
                    &verdict.code,
                    verdict.reason,
                )));
            }
            Ok(Outcome::Unspecified) | Err(_) => {
                return Err(TransportError::BadReply(format!(
                    "outcome {} is not accepted, duplicate or refused",
                    verdict.outcome
                ))
                .into());
            }
        };
        Ok(Self {
            envelope_id: verdict.envelope_id,
            duplicate,
            recipients: verdict.recipients,
            policy_ids: verdict.policy_ids,
        })
    }
}

/// A connected agency.
pub struct AgencyClient {
    pub(crate) agency: AgencyId,
    pub(crate) client: async_nats::Client,
    tokens: Tokens,
    verdict_timeout: Duration,
    retry: RetryPolicy,
}

/// Reads an agency's signing key (PKCS#8 PEM, Ed25519 or P-256); `kid`
/// defaults to the key's RFC 7638 thumbprint.
pub fn signer_from_file(path: &Path, kid: Option<&str>) -> Result<Signer, ConnectError> {
    let pem = std::fs::read_to_string(path).map_err(|e| ConnectError::File {
        what: "signing key",
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    Signer::from_pem(&pem, kid).map_err(ConnectError::Key)
}

impl AgencyClient {
    /// Connects as `agency` to `url` with `auth` (its NKey, registered for
    /// it), signing with `key_pem` for `audience` (the development system
    /// and the tests).
    pub async fn connect(
        url: &str,
        auth: &NatsAuth,
        agency: AgencyId,
        key_pem: &str,
        audience: &str,
    ) -> Result<Self, ConnectError> {
        let signer = Signer::from_pem(key_pem, None).map_err(ConnectError::Key)?;
        let options = NatsOptions::with_auth(url, auth.clone());
        Self::connect_with(agency, signer, audience, &options).await
    }

    /// Connects as `agency` with `options` (credentials file, NKey, TLS, ...),
    /// signing tokens for `audience` with `signer`.
    pub async fn connect_with(
        agency: AgencyId,
        signer: Signer,
        audience: &str,
        options: &NatsOptions,
    ) -> Result<Self, ConnectError> {
        let client = connect(&agency, options).await?;
        Ok(Self::new(client, agency, signer, audience))
    }

    /// Wraps a NATS connection made elsewhere. It must use the inbox prefix
    /// `_INBOX_<agency>` (see [`crate::connect`]).
    pub fn new(
        client: async_nats::Client,
        agency: AgencyId,
        signer: Signer,
        audience: &str,
    ) -> Self {
        Self {
            tokens: Tokens::new(signer, agency.as_str(), audience),
            agency,
            client,
            verdict_timeout: VERDICT_TIMEOUT,
            retry: RetryPolicy::default(),
        }
    }

    /// Waits at most `timeout` for each verdict.
    pub fn with_verdict_timeout(mut self, timeout: Duration) -> Self {
        self.verdict_timeout = timeout;
        self
    }

    /// Retries [`submit`](Self::submit) as `policy` says.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    pub fn agency(&self) -> &AgencyId {
        &self.agency
    }

    /// The underlying NATS connection.
    pub fn nats(&self) -> &async_nats::Client {
        &self.client
    }

    /// A new envelope from this agency by `author`, to fill in and build.
    pub fn envelope(&self, author: impl Into<String>) -> EnvelopeBuilder {
        EnvelopeBuilder::new(&self.agency, author)
    }

    /// A token for `subject` (reused for half its life).
    pub fn token(&self, subject: &str) -> Result<String, SigningError> {
        self.tokens.token(subject)
    }

    /// A token minted now, never reused (tests of the replay cache use it).
    pub fn fresh_token(&self, subject: &str) -> Result<String, SigningError> {
        self.tokens.fresh(subject)
    }

    /// Checks `envelope`, sends it and retries what may succeed later with
    /// the same id, until [`RetryPolicy::deadline`]. Accepted and duplicate
    /// are receipts; a refusal is [`SendError::Refused`].
    pub async fn submit(&self, envelope: &Envelope) -> Result<Receipt, SendError> {
        check(envelope, &self.agency)?;
        let verdict = self.send_retrying(envelope, self.retry).await?;
        Receipt::from_verdict(verdict)
    }

    /// Sends `envelope` as it is, once, signed for its author, and returns
    /// the gateway's verdict whatever it is.
    pub async fn send(&self, envelope: &Envelope) -> Result<Verdict, SendError> {
        let (hop, traced) = self.traced(envelope);
        let span = hop.span().clone();
        let sent = self
            .send_once(&traced, hop.context().as_ref(), self.verdict_timeout)
            .instrument(span)
            .await;
        record_outcome(&hop, &sent);
        sent
    }

    /// Sends raw bytes with an optional token (tools and tests).
    pub async fn send_raw(
        &self,
        payload: Bytes,
        token: Option<&str>,
    ) -> Result<Verdict, TransportError> {
        request(
            &self.client,
            subjects::ingress(&self.agency),
            payload,
            token,
            self.verdict_timeout,
        )
        .await
    }

    /// The `envelope.send` span of one share, and the envelope carrying its
    /// context in its `traceparent` field.
    fn traced(&self, envelope: &Envelope) -> (Hop, Envelope) {
        let span = tracing::info_span!(
            "envelope.send",
            otel.kind = "client",
            agency = self.agency.as_str(),
            kind = envelope.kind(),
            envelope_id = tracing::field::Empty,
            attempts = tracing::field::Empty,
            outcome = tracing::field::Empty,
            code = tracing::field::Empty,
        );
        if liaison_core::ids::validate_envelope_id(&envelope.id).is_ok() {
            span.record("envelope_id", envelope.id.as_str());
        }
        let hop = Hop::starting(span, TraceContext::from_field(&envelope.traceparent));
        let mut traced = envelope.clone();
        if let Some(context) = hop.context() {
            traced.traceparent = context.parent.to_string();
        }
        (hop, traced)
    }

    /// Sends `envelope`, retrying with the same id while the gateway is
    /// unavailable, rate-limiting or unreachable, for up to `give_up_after`,
    /// and returns the final verdict (a refusal that would repeat included).
    pub async fn send_until_answered(
        &self,
        envelope: &Envelope,
        give_up_after: Duration,
    ) -> Result<Verdict, SendError> {
        self.send_retrying(envelope, RetryPolicy::for_up_to(give_up_after))
            .await
    }

    async fn send_once(
        &self,
        envelope: &Envelope,
        context: Option<&TraceContext>,
        timeout: Duration,
    ) -> Result<Verdict, SendError> {
        let token = self.tokens.token(&envelope.author)?;
        let payload = envelope.encode_to_vec().into();
        let subject = subjects::ingress(&self.agency);
        let mut headers = HeaderMap::new();
        headers.insert(subjects::TOKEN_HEADER, token.as_str());
        if let Some(context) = context {
            trace::inject(&mut headers, context);
        }
        let verdict =
            request_with_headers(&self.client, subject, payload, headers, timeout).await?;
        if Refusal::from_code(&verdict.code, "").needs_new_token() {
            self.tokens.forget(&envelope.author);
        }
        Ok(verdict)
    }

    /// Sends until the verdict is final (accepted, duplicate, or a refusal
    /// that would repeat) or the policy's deadline passes.
    async fn send_retrying(
        &self,
        envelope: &Envelope,
        policy: RetryPolicy,
    ) -> Result<Verdict, SendError> {
        let (hop, traced) = self.traced(envelope);
        let span = hop.span().clone();
        let sent = self
            .attempts(&traced, hop.context().as_ref(), policy)
            .instrument(span)
            .await;
        record_outcome(&hop, &sent);
        sent
    }

    async fn attempts(
        &self,
        envelope: &Envelope,
        context: Option<&TraceContext>,
        policy: RetryPolicy,
    ) -> Result<Verdict, SendError> {
        let started = Instant::now();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let timeout = match policy.deadline.checked_sub(started.elapsed()) {
                Some(left) if attempts > 1 => self.verdict_timeout.min(left),
                _ => self.verdict_timeout,
            };
            tracing::Span::current().record("attempts", attempts);
            let error = match self.send_once(envelope, context, timeout).await {
                Ok(v) if v.outcome == Outcome::Refused as i32 => {
                    let refusal = Refusal::from_code(&v.code, v.reason.clone());
                    if !refusal.is_retryable() {
                        return Ok(v);
                    }
                    SendError::Refused(refusal)
                }
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() => e,
                Err(e) => return Err(e),
            };
            let pause = policy.pause(attempts - 1);
            if started.elapsed() + pause >= policy.deadline {
                if attempts == 1 {
                    return Err(error);
                }
                return Err(SendError::GaveUp {
                    envelope_id: envelope.id.clone(),
                    attempts,
                    elapsed: started.elapsed(),
                    last: Box::new(error),
                });
            }
            tracing::debug!(
                agency = %self.agency,
                envelope_id = %envelope.id,
                attempts,
                error = %error,
                "Re-sending envelope with the same id"
            );
            tokio::time::sleep(pause).await;
        }
    }
}

impl AgencyClient {
    /// Asks the gateway about the cases this agency participates in, signed
    /// for `author` (the consultation is recorded in the ledger under that
    /// name). A refusal (`unknown_case`, or any ingress refusal) is
    /// [`SendError::Refused`].
    pub async fn cases(
        &self,
        author: &str,
        query: &liaison_proto::v1::CaseQuery,
    ) -> Result<liaison_proto::v1::CaseQueryAnswer, SendError> {
        use async_nats::RequestErrorKind;
        let token = self.tokens.token(author)?;
        let mut headers = HeaderMap::new();
        headers.insert(subjects::TOKEN_HEADER, token.as_str());
        let subject = subjects::ingress_query(&self.agency);
        let timeout = self.verdict_timeout;
        let reply = tokio::time::timeout(
            timeout,
            self.client.request_with_headers(
                subject.clone(),
                headers,
                query.encode_to_vec().into(),
            ),
        )
        .await
        .map_err(|_| TransportError::Timeout(timeout))?
        .map_err(|e| match e.kind() {
            RequestErrorKind::TimedOut => TransportError::Timeout(timeout),
            RequestErrorKind::NoResponders => TransportError::NoResponders(subject),
            _ => TransportError::Request(e.to_string()),
        })?;
        let answer = liaison_proto::v1::CaseQueryAnswer::decode(reply.payload.as_ref())
            .map_err(|e| TransportError::BadReply(e.to_string()))?;
        if answer.code.is_empty() {
            Ok(answer)
        } else {
            Err(SendError::Refused(Refusal::from_code(
                &answer.code,
                answer.reason,
            )))
        }
    }
}

/// Notes the verdict (its outcome and refusal code) on the send's span.
fn record_outcome(hop: &Hop, sent: &Result<Verdict, SendError>) {
    let span = hop.span();
    match sent {
        Ok(verdict) => {
            let outcome = Outcome::try_from(verdict.outcome).map_or("", |o| o.as_str_name());
            span.record("outcome", outcome);
            if Refusal::CODES.contains(&verdict.code.as_str()) {
                span.record("code", verdict.code.as_str());
            }
        }
        Err(_) => {
            span.record("outcome", "not_answered");
        }
    }
}

/// Sends one ingress request on `subject` and decodes the verdict.
pub async fn request(
    client: &async_nats::Client,
    subject: String,
    payload: Bytes,
    token: Option<&str>,
    timeout: Duration,
) -> Result<Verdict, TransportError> {
    let mut headers = HeaderMap::new();
    if let Some(token) = token {
        headers.insert(subjects::TOKEN_HEADER, token);
    }
    request_with_headers(client, subject, payload, headers, timeout).await
}

/// Sends one ingress request with `headers` and decodes the verdict.
async fn request_with_headers(
    client: &async_nats::Client,
    subject: String,
    payload: Bytes,
    headers: HeaderMap,
    timeout: Duration,
) -> Result<Verdict, TransportError> {
    use async_nats::RequestErrorKind;
    let reply = tokio::time::timeout(
        timeout,
        client.request_with_headers(subject.clone(), headers, payload),
    )
    .await
    .map_err(|_| TransportError::Timeout(timeout))?
    .map_err(|e| match e.kind() {
        RequestErrorKind::TimedOut => TransportError::Timeout(timeout),
        RequestErrorKind::NoResponders => TransportError::NoResponders(subject),
        RequestErrorKind::InvalidSubject | RequestErrorKind::MaxPayloadExceeded => {
            TransportError::Unsendable(e.to_string())
        }
        RequestErrorKind::Other => TransportError::Request(e.to_string()),
    })?;
    Verdict::decode(reply.payload.as_ref()).map_err(|e| TransportError::BadReply(e.to_string()))
}
