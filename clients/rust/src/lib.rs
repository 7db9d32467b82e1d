//! `liaison-client`: what a partner agency's system needs to take part in
//! Liaison over NATS, implementing the wire contract (docs/wire-contract.md).
//!
//! - [`connect`]: the agency's own NATS user (user and password, a `.creds`
//!   file or an NKey seed), optional TLS, the agency's inbox prefix;
//! - [`tokens`]: tokens signed with the agency's key (EdDSA or ES256, `kid`
//!   the RFC 7638 thumbprint), each reused for half its two-minute life;
//! - [`envelope`]: building an envelope (id = a UUID v4, the idempotency key;
//!   sender, author, `sent_at`) and checking it as the gateway would;
//! - [`AgencyClient::submit`]: sending with safe retries — only `unavailable`,
//!   `rate_limited` and transport failures, always with the same id,
//!   exponential backoff with a cap and an overall deadline ([`retry`]) —
//!   answering a [`Receipt`] or a typed [`SendError`], whose
//!   [`Refused`](SendError::Refused) variant holds a [`Refusal`] per
//!   gateway code;
//! - [`inbox`]: the agency's durable inbox, read through the gateway with
//!   explicit acknowledgement ([`AgencyClient::next_batch`],
//!   [`Received::ack`]); catching up after being offline needs nothing
//!   more. Every copy carries its number in the inbox
//!   ([`Received::recipient_seq`]: 1, 2, 3 …) and [`Gaps`] proves nothing
//!   was missed. A delivery whose acknowledgement was lost is delivered
//!   again: de-duplicate on the envelope id (see [`inbox`]);
//! - [`adapter`]: a file-drop adapter for case systems that exchange files.
//!
//! - [`subject`]: pseudonymous subject tokens (`st1:…`, HMAC-SHA256 of the
//!   person's normalised identifiers under the partnership's
//!   [`SubjectKey`]), computed here so that raw identifiers never need to
//!   cross the bus for the linkage service to match people
//!   ([`subject_token`]).
//!
//! - [`reply`]: replies to what the agency received — answering an
//!   information request ([`AgencyClient::answer`]), acknowledging an alert
//!   ([`AgencyClient::acknowledge`]), confirming the erasure of an envelope
//!   withdrawn as shared in error ([`AgencyClient::confirm_erasure`]) — each
//!   with an id derived from what it answers, so a retry is a duplicate;
//!   [`ReplyDue`] says what a delivery asks for;
//! - [`AgencyClient::cases`]: the cases this agency takes part in (request
//!   and reply to the cases service, policy applied).
//!
//! ```no_run
//! use liaison_client::{
//!     AgencyClient, AgencyId, Credentials, NatsOptions, Refusal, SendError, signer_from_file,
//! };
//! use liaison_proto::v1::{CaseUpdated, Classification};
//! use std::path::Path;
//! use std::time::Duration;
//!
//! # async fn example() -> anyhow::Result<()> {
//! let council = AgencyId::parse("council")?;
//! let nats = NatsOptions::new(
//!     "tls://liaison.example:4222",
//!     Credentials::new("council", std::env::var("NATS_PASSWORD")?),
//! )
//! .require_tls(Some("partnership-ca.pem".into()));
//! let key = signer_from_file(Path::new("council.pem"), None)?;
//! let client = AgencyClient::connect_with(council, key, "liaison-gateway", &nats).await?;
//!
//! let update = client
//!     .envelope("council-case-system")
//!     .classification(Classification::OfficialSensitive)
//!     .purpose("safeguarding")
//!     .legal_basis("CTSA-2015-s36")
//!     .case_id("CASE-0042")
//!     .case_update(CaseUpdated { summary: "Home visit completed".into(), ..Default::default() })
//!     .build()?;
//! match client.submit(&update).await {
//!     Ok(receipt) => println!("{} delivered to {:?}", receipt.envelope_id, receipt.recipients),
//!     Err(SendError::Refused(Refusal::PolicyDenied(reason))) => println!("not shared: {reason}"),
//!     Err(e) if e.is_retryable() => println!("try again later, same id: {e}"),
//!     Err(e) => return Err(e.into()),
//! }
//!
//! for received in client.next_batch(50, Duration::from_secs(5)).await? {
//!     // Store it first (idempotently, by envelope id), then acknowledge.
//!     println!("received {}", received.envelope_id());
//!     received.ack().await?;
//! }
//! # Ok(())
//! # }
//! ```

pub mod adapter;
pub mod client;
pub mod connect;
pub mod envelope;
pub mod error;
pub mod inbox;
pub mod refusal;
pub mod reply;
pub mod retry;
pub mod subject;
pub mod tokens;

pub use client::{
    AgencyClient, DEFAULT_AUDIENCE, Receipt, VERDICT_TIMEOUT, request, signer_from_file,
};
pub use connect::{NatsAuth, NatsOptions, TlsOptions};
pub use envelope::{EnvelopeBuilder, InvalidEnvelope};
pub use error::{ConnectError, InboxError, SendError, TransportError};
pub use inbox::{Gaps, Received};
/// What every agency integration names: its id, its NATS login and the
/// secret type that keeps the password out of logs (from `liaison-core`).
pub use liaison_core::{AgencyId, Credentials, Secret};
pub use refusal::Refusal;
pub use reply::{ReplyDue, reply_id};
pub use retry::RetryPolicy;
pub use subject::{IdentifierError, Identifiers, KeyError, SubjectKey, subject_token};
pub use tokens::{SigningError, TOKEN_LIFETIME_SECS, mint};

#[cfg(test)]
mod tests;
