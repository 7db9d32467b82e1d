//! The linkage service's loop: EVENTS in order, each applied to the index;
//! each referral's matches kept in the outbox, then — once the reader has
//! caught up with EVENTS — recorded (a COMBINATION record each) and raised
//! through the gateway's internal door; the index stored every so often
//! with the cursor. Each event is folded in a `linkage.fold` span that
//! continues its trace; a match's envelope carries that span's context in
//! its `traceparent` field (kept with it in the outbox), and so does the
//! header of its COMBINATION record. It reads no agency's inbox and keeps
//! nothing but tokens.

use crate::alert::Grounds;
use crate::index::{Index, Settings};
use crate::metrics::Metrics;
use crate::store::{IndexStore, StoreError};
use async_nats::jetstream::{self, Context};
use liaison_core::system::Service;
use liaison_runtime::config::{Config, LinkageConfig};
use liaison_runtime::discovery::{DiscoveryError, Member, Registration};
use liaison_runtime::fold::{self, Cursor, Events, FoldError, Outbox};
use liaison_runtime::ops::{Listener, OpsError, Probe};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

mod folding;

/// How long the reader waits for the next event before it counts as idle
/// (the index is stored when idle).
const IDLE: Duration = Duration::from_millis(50);
/// Store at least this often, and after this many events, while busy.
const STORE_EVERY: Duration = Duration::from_secs(2);
const STORE_EVENTS: u64 = 1000;
/// Wait before raising again after the gateway could not take an event, and
/// before reading EVENTS again after the reader failed.
const RETRY: Duration = Duration::from_secs(1);

/// Why the linkage service could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum LinkageError {
    #[error("[linkage] configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Fold(#[from] FoldError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("decision record {record}: {reason}")]
    Record { record: String, reason: String },
    #[error(transparent)]
    Telemetry(#[from] OpsError),
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
}

/// The settings of `[linkage]`, checked.
pub fn settings(config: &LinkageConfig) -> Result<(Settings, Grounds), LinkageError> {
    let days = |d: u64, key: &str| {
        i64::try_from(d)
            .ok()
            .and_then(|d| d.checked_mul(24 * 3600))
            .ok_or_else(|| LinkageError::Config(format!("{key} is too large")))
    };
    for (key, value) in [
        ("purpose", &config.purpose),
        ("legal_basis", &config.legal_basis),
    ] {
        if value.trim().is_empty() {
            return Err(LinkageError::Config(format!(
                "{key} is required (a code of deploy/policies/vocabulary.toml)"
            )));
        }
    }
    Ok((
        Settings {
            window_secs: days(config.duplicate_window_days, "duplicate_window_days")?,
            review_horizon_secs: days(config.review_horizon_days, "review_horizon_days")?,
        },
        Grounds {
            purpose: config.purpose.trim().to_owned(),
            legal_basis: config.legal_basis.trim().to_owned(),
        },
    ))
}

/// A linkage service that has loaded its index and bound its EVENTS reader.
pub struct LinkageService {
    client: async_nats::Client,
    js: Context,
    cursor: Cursor,
    outbox: Outbox,
    store: IndexStore,
    index: Index,
    grounds: Grounds,
    events: Events,
    /// The last event applied to the index, and the last stored.
    applied: u64,
    stored: u64,
    /// Events up to this one were decided before (their matches are in the outbox).
    decided: u64,
    metrics: Arc<Metrics>,
    telemetry: Option<Listener>,
    /// Set while EVENTS is being read: what `/readyz` and `status` report.
    ready: Arc<AtomicBool>,
    discovery: Registration,
}

impl LinkageService {
    /// Loads the index from the service's bucket and binds EVENTS after its cursor.
    pub async fn start(config: Config, client: async_nats::Client) -> Result<Self, LinkageError> {
        let (settings, grounds) = settings(&config.linkage)?;
        let telemetry = if config.telemetry.enabled() {
            Some(Listener::bind(&config.telemetry.listen).await?)
        } else {
            None
        };
        let js = jetstream::new(client.clone());
        let kv = fold::bucket(&js, Service::Linkage).await?;
        let cursor = Cursor::new(kv.clone(), Service::Linkage);
        let at = cursor.get().await?;
        let store = IndexStore::new(kv.clone());
        let loaded = store.load(settings).await?;
        let outbox = Outbox::load(kv, Service::Linkage).await?;
        let events = Events::after(&js, at).await?;
        let (tokens, cases) = loaded.index.len();
        info!(
            tokens,
            cases,
            cursor = at,
            decided = loaded.decided,
            outbox = outbox.len(),
            "Linkage index loaded"
        );
        let metrics = Arc::new(Metrics::new());
        metrics.tokens.set(&[], tokens as u64);
        metrics.cases.set(&[], cases as u64);
        metrics.outbox.set(&[], outbox.len() as u64);
        metrics
            .cursor
            .set(&[], liaison_runtime::fold::applied_through(at));
        let ready = Arc::new(AtomicBool::new(false));
        let discovery = Registration::start(&client, Member::Linkage, ready.clone()).await?;
        Ok(Self {
            client,
            js,
            cursor,
            outbox,
            store,
            index: loaded.index,
            grounds,
            events,
            applied: at,
            stored: at,
            decided: loaded.decided.max(at),
            metrics,
            telemetry,
            ready,
            discovery,
        })
    }

    /// Where `/metrics`, `/healthz` and `/readyz` are served, if configured.
    pub fn telemetry_addr(&self) -> Option<std::net::SocketAddr> {
        self.telemetry.as_ref().and_then(Listener::local_addr)
    }

    /// Folds EVENTS, matches referrals and raises what they match until
    /// `shutdown`; then stores the index.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), LinkageError> {
        let telemetry = self.telemetry.take().map(|listener| {
            let probe = Probe {
                registry: self.metrics.registry.clone(),
                client: self.client.clone(),
                bound: self.ready.clone(),
            };
            tokio::spawn(listener.serve(probe, shutdown.child_token()))
        });
        self.ready.store(true, Ordering::Relaxed);
        let served = self.serve(&shutdown).await;
        self.ready.store(false, Ordering::Relaxed);
        self.discovery.stop().await;
        if let Some(telemetry) = telemetry {
            telemetry.abort();
        }
        served
    }

    async fn serve(&mut self, shutdown: &CancellationToken) -> Result<(), LinkageError> {
        let mut last_store = Instant::now();
        let mut raise_after: Option<Instant> = None;
        // Events folded since the index was last stored (positions are not
        // counts: ADR 0024).
        let mut unstored: u64 = 0;
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => break,
                next = self.events.next_within(IDLE) => next,
            };
            let idle = match next {
                Ok(Some(event)) => {
                    self.fold(event).await?;
                    unstored += 1;
                    false
                }
                Ok(None) => true,
                Err(e) => {
                    warn!(error = %e, "EVENTS reader failed; reading again");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(RETRY) => {}
                    }
                    self.events = Events::after(&self.js, self.applied).await?;
                    continue;
                }
            };
            if self.events.caught_up()
                && self.outbox.to_raise().next().is_some()
                && raise_after.is_none_or(|t| Instant::now() >= t)
            {
                raise_after = match self.raise().await {
                    Ok(()) => None,
                    Err(e) => {
                        warn!(error = %e, pending = self.outbox.len(), "Events not raised yet; retrying");
                        Some(Instant::now() + RETRY)
                    }
                };
            }
            if self.applied > self.stored
                && (idle || unstored >= STORE_EVENTS || last_store.elapsed() >= STORE_EVERY)
            {
                match self
                    .store
                    .store(&mut self.index, self.applied, &self.cursor)
                    .await
                {
                    Ok(()) => {
                        self.stored = self.applied;
                        unstored = 0;
                    }
                    Err(e) => warn!(error = %e, "Index not stored; retrying"),
                }
                last_store = Instant::now();
            }
        }
        if self.applied > self.stored {
            self.store
                .store(&mut self.index, self.applied, &self.cursor)
                .await?;
        }
        Ok(())
    }
}
