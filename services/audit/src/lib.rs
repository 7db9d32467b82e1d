//! `liaison-audit`: the tamper-evident audit ledger.
//!
//! Owns the LEDGER stream: it chains every decision record the other services
//! publish to DECISIONS into a SHA-256 hash chain ([`chain`], [`writer`]), and
//! verifies the chain end to end ([`verify`]). It does not make decisions; it
//! records them. Checkpoints, Merkle proofs and replay build on this chain.

pub mod chain;
pub mod verify;
pub mod writer;

use async_nats::jetstream::{self, consumer::PullConsumer};
use liaison_kit::subjects;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("NATS: {0}")]
    Nats(String),
    #[error("ledger writer stopped: {0}")]
    Writer(String),
}

/// An audit service bound to its DECISIONS consumer: ready to serve.
pub struct AuditService {
    js: jetstream::Context,
    consumer: PullConsumer,
}

impl AuditService {
    pub async fn start(client: async_nats::Client) -> Result<Self, AuditError> {
        let js = jetstream::new(client);
        let consumer = js
            .get_consumer_from_stream(subjects::LEDGER_WRITER_CONSUMER, subjects::DECISIONS_STREAM)
            .await
            .map_err(|e| {
                AuditError::Nats(format!(
                    "DECISIONS consumer {}: {e}",
                    subjects::LEDGER_WRITER_CONSUMER
                ))
            })?;
        writer::load_tail(&js).await.map_err(AuditError::Nats)?;
        Ok(Self { js, consumer })
    }

    /// Appends decision records to the ledger until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), AuditError> {
        writer::serve(self.js, self.consumer, shutdown)
            .await
            .map_err(AuditError::Writer)
    }
}

/// Starts the audit service and serves until `shutdown`.
pub async fn run(
    client: async_nats::Client,
    shutdown: CancellationToken,
) -> Result<(), AuditError> {
    AuditService::start(client).await?.run(shutdown).await
}
