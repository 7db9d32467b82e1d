//! `liaison-audit`: the tamper-evident audit ledger.
//!
//! Owns LEDGER and CHECKPOINTS: it appends every decision record the other
//! services publish to DECISIONS to a SHA-256 hash chain ([`chain`]) and an
//! RFC 6962 Merkle tree ([`merkle`]) as their single writer ([`writer`]),
//! signs checkpoints of the tree ([`checkpoint`]), and verifies all of it
//! end to end, online ([`verify`]) or from an exported bundle ([`bundle`]),
//! through one inspector ([`inspect`]). It records decisions; it makes none.

pub mod batch;
pub mod bundle;
pub mod chain;
pub mod check;
pub mod checkpoint;
pub mod consult;
pub mod cosign;
pub mod inspect;
pub mod intake;
pub mod merkle;
pub mod metrics;
pub mod reader;
pub mod receipt;
pub mod recent;
pub mod replay;
pub mod restore;
pub mod scoped;
pub mod state;
pub mod stores;
pub mod subject;
pub mod verify;
pub mod witness;
pub mod writer;

use async_nats::jetstream::{self, consumer::PullConsumer};
use async_nats::service::endpoint::Endpoint;
use futures_util::StreamExt;
use liaison_core::NatsContext as _;
use liaison_core::subjects;
use liaison_runtime::config::Config;
use liaison_runtime::discovery::{Member, Registration};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Nats(#[from] liaison_core::NatsError),
    #[error("checkpoint key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("{0}")]
    Ledger(String),
    #[error("ledger writer")]
    Writer(#[from] writer::WriterError),
    #[error(transparent)]
    Read(#[from] reader::ReadError),
    #[error(transparent)]
    Telemetry(#[from] liaison_runtime::ops::OpsError),
    #[error(transparent)]
    Discovery(#[from] liaison_runtime::discovery::DiscoveryError),
}

/// Loads the checkpoint signing key named in `config`.
pub fn signer(config: &Config) -> Result<checkpoint::NoteSigner, AuditError> {
    let path = &config.audit.checkpoint_key;
    let fail = |reason: String| AuditError::Key {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    checkpoint::NoteSigner::from_pem(&config.audit.origin, &pem).map_err(|e| fail(e.to_string()))
}

/// An audit service that has verified the ledger and bound its consumer.
pub struct AuditService {
    client: async_nats::Client,
    writer: Arc<writer::Writer>,
    consumer: PullConsumer,
    requests: Endpoint,
    /// Auditors' consultations, readers and scoped records.
    auditor_requests: consult::Subscriptions,
    /// nats-server's stream advisories ([`stores`]).
    store_changes: async_nats::Subscriber,
    auditors: consult::Auditors,
    interval: Duration,
    telemetry: Option<liaison_runtime::ops::Listener>,
    /// Set while it appends: what `/readyz` and the `status` endpoint report.
    ready: Arc<AtomicBool>,
    discovery: Registration,
    /// The witnesses asked to cosign each checkpoint (ADR 0023).
    witnesses: Vec<cosign::Remote>,
}

impl AuditService {
    pub async fn start(config: Config, client: async_nats::Client) -> Result<Self, AuditError> {
        let signer = signer(&config)?;
        let witnesses = config
            .audit
            .witnesses
            .iter()
            .map(|w| cosign::Remote::new(&w.url, &w.key))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AuditError::Ledger(format!("audit.witnesses: {e}")))?;
        if config.audit.witness_quorum > witnesses.len() {
            return Err(AuditError::Ledger(format!(
                "audit.witness_quorum = {} but only {} witnesses are configured",
                config.audit.witness_quorum,
                witnesses.len()
            )));
        }
        let telemetry = if config.telemetry.enabled() {
            Some(liaison_runtime::ops::Listener::bind(&config.telemetry.listen).await?)
        } else {
            None
        };
        let auditors = consult::load_auditors(
            &config.audit.auditors,
            config.gateway.clock_skew_secs,
            config.gateway.max_token_lifetime_secs,
        )
        .map_err(AuditError::Ledger)?;
        let js = jetstream::new(client.clone());
        let consumer = js
            .get_consumer_from_stream(subjects::LEDGER_WRITER_CONSUMER, subjects::DECISIONS_STREAM)
            .await
            .nats(format!(
                "DECISIONS consumer {}",
                subjects::LEDGER_WRITER_CONSUMER
            ))?;
        let writer = writer::Writer::start(
            js,
            signer,
            config.audit.origin.clone(),
            config.audit.checkpoint_every,
        )
        .await?;
        let ready = Arc::new(AtomicBool::new(false));
        let discovery = Registration::start(&client, Member::Audit, ready.clone()).await?;
        let requests = discovery
            .endpoint("checkpoint", subjects::CHECKPOINT_REQUEST)
            .await?;
        let consultations = client
            .subscribe(subjects::CONSULT_REQUEST)
            .await
            .nats("subscribe to consultation requests")?;
        let reads = client
            .subscribe(subjects::READ_REQUEST)
            .await
            .nats("subscribe to read requests")?;
        let records = client
            .subscribe(subjects::RECORDS_REQUEST)
            .await
            .nats("subscribe to records requests")?;
        // Stream changes, on the record (ADR 0021): subscribed before the
        // service counts as started, so none after it is missed.
        let store_changes = client
            .subscribe(stores::ADVISORIES)
            .await
            .nats("subscribe to stream advisories")?;
        Ok(Self {
            client,
            writer: Arc::new(writer),
            consumer,
            requests,
            auditor_requests: consult::Subscriptions {
                consultations,
                reads,
                records,
            },
            store_changes,
            auditors,
            interval: Duration::from_secs(config.audit.checkpoint_interval_secs.max(1)),
            telemetry,
            ready,
            discovery,
            witnesses,
        })
    }

    /// Where `/metrics`, `/healthz` and `/readyz` are served, if configured.
    pub fn telemetry_addr(&self) -> Option<std::net::SocketAddr> {
        self.telemetry
            .as_ref()
            .and_then(liaison_runtime::ops::Listener::local_addr)
    }

    /// Appends decision records and signs checkpoints until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), AuditError> {
        let checkpoints = tokio::spawn(checkpointer(
            self.writer.clone(),
            self.requests,
            self.interval,
            shutdown.clone(),
        ));
        let consultations = tokio::spawn(consult::serve(
            self.client.clone(),
            self.writer.clone(),
            self.auditors,
            self.auditor_requests,
            shutdown.clone(),
        ));
        let store_changes = tokio::spawn(stores::watch(
            jetstream::new(self.client.clone()),
            self.store_changes,
            shutdown.clone(),
        ));
        let cosigning = (!self.witnesses.is_empty()).then(|| {
            tokio::spawn(cosign::run(
                jetstream::new(self.client.clone()),
                self.writer.ledger(),
                self.witnesses,
                self.writer.signed(),
                self.interval,
                shutdown.clone(),
            ))
        });
        let bound = self.ready;
        bound.store(true, Ordering::Relaxed);
        let telemetry = self.telemetry.map(|listener| {
            let probe = liaison_runtime::ops::Probe {
                registry: self.writer.metrics.registry.clone(),
                client: self.client.clone(),
                bound: bound.clone(),
            };
            tokio::spawn(listener.serve(probe, shutdown.child_token()))
        });
        let written = self.writer.serve(self.consumer, shutdown.clone()).await;
        bound.store(false, Ordering::Relaxed);
        shutdown.cancel();
        self.discovery.stop().await;
        if let Some(telemetry) = telemetry {
            telemetry.abort();
        }
        let _ = checkpoints.await;
        let _ = consultations.await;
        let _ = store_changes.await;
        if let Some(cosigning) = cosigning {
            let _ = cosigning.await;
        }
        // A last checkpoint covers everything written before stopping.
        if let Err(e) = self.writer.checkpoint_now().await {
            warn!(error = %liaison_core::error::chain(&e), "No final checkpoint");
        }
        Ok(written?)
    }
}

/// Signs a checkpoint every `interval` when records were added, and on request.
async fn checkpointer(
    writer: Arc<writer::Writer>,
    mut requests: Endpoint,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(interval);
    loop {
        let request = tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => None,
            request = requests.next() => match request {
                Some(r) => Some(r),
                None => return,
            },
        };
        match writer.checkpoint_now().await {
            Ok(note) => {
                // Answered only in the asker's inbox: never into LEDGER or
                // CHECKPOINTS, which the audit service may write (ADR 0021).
                if let Some(request) = request.filter(|r| {
                    r.message
                        .reply
                        .as_ref()
                        .is_some_and(|to| subjects::reply_is_an_inbox(to))
                }) {
                    let _ = request.respond(Ok(note.unwrap_or_default().into())).await;
                }
            }
            Err(e) => error!(error = %liaison_core::error::chain(&e), "Checkpoint failed"),
        }
    }
}

/// Starts the audit service and serves until `shutdown`.
pub async fn run(
    config: Config,
    client: async_nats::Client,
    shutdown: CancellationToken,
) -> Result<(), AuditError> {
    AuditService::start(config, client)
        .await?
        .run(shutdown)
        .await
}

#[cfg(test)]
mod tests;
