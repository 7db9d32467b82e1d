//! `liaison-alerts`: business alerts, acknowledged or escalated.
//!
//! Folds EVENTS, in order, into the state of every alert ([`alert`]): who
//! received it, which business partners among them must acknowledge it,
//! which have (`alert_ack`, `in_reply_to` = the alert), and the escalations
//! raised. The state lives in the `ALERTS` KV bucket with the fold cursor
//! ([`store`], `liaison_runtime::fold`): a restart resumes after the cursor, an
//! empty bucket is rebuilt from EVENTS. When an alert's escalation is due
//! ([`escalation`]: periods per threat level from `[alerts]`), it raises an
//! `AlertEscalated` through the gateway's internal door, via the outbox, to
//! the issuing unit and the partners still silent. Each acknowledgement and
//! escalation is a decision record ([`records`]). [`board`] is what
//! `liaison alerts` shows. It decides nothing about who receives what: the
//! gateway's policy does. It registers with the NATS service API
//! (`liaison-alerts`) and serves `/metrics`, `/healthz` and `/readyz` on
//! `[telemetry] listen` ([`metrics`]).

pub mod alert;
pub mod board;
pub mod escalation;
pub mod metrics;
pub mod records;
mod serve;
pub mod store;
pub mod tracker;

use async_nats::jetstream;
use liaison_core::system::Service;
use liaison_runtime::config::Config;
use liaison_runtime::fold::{self, Cursor, FoldError};
use liaison_runtime::registry::{AgencyKind, Registry};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;
use tracing::info;

#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error(transparent)]
    Nats(#[from] liaison_core::NatsError),
    #[error(transparent)]
    Registry(#[from] liaison_runtime::registry::RegistryError),
    #[error("{0}")]
    LiveRegistry(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Fold(#[from] FoldError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Telemetry(#[from] liaison_runtime::ops::OpsError),
    #[error(transparent)]
    Discovery(#[from] liaison_runtime::discovery::DiscoveryError),
}

/// The wall clock, in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// An alerts service with its state loaded.
pub struct AlertsService {
    client: async_nats::Client,
    js: jetstream::Context,
    cursor: Cursor,
    start: u64,
    tracker: tracker::Tracker,
    dedup_window_ms: i64,
    metrics: Arc<metrics::Metrics>,
    telemetry: Option<liaison_runtime::ops::Listener>,
    /// Set while EVENTS is being read: what `/readyz` and `status` report.
    ready: Arc<AtomicBool>,
    discovery: liaison_runtime::discovery::Registration,
    /// The live registry, followed for its business partners.
    follower: liaison_runtime::live_registry::Follower,
    business: tracker::Partners,
}

/// The business partners of `registry`: they must acknowledge alerts.
fn business_partners(registry: &Registry) -> std::collections::BTreeSet<liaison_core::AgencyId> {
    registry
        .agencies()
        .filter(|a| a.kind == AgencyKind::Business)
        .map(|a| a.id.clone())
        .collect()
}

/// Follows the live registry's business partners until `shutdown`.
async fn follow_partners(
    mut follower: liaison_runtime::live_registry::Follower,
    business: tracker::Partners,
    shutdown: CancellationToken,
) {
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => return,
            next = follower.next() => next,
        };
        match next {
            None => return,
            Some(Ok(registry)) => {
                let partners = business_partners(&registry);
                info!(
                    business = partners.len(),
                    "Business partners follow the live registry"
                );
                match business.write() {
                    Ok(mut set) => *set = partners,
                    Err(poisoned) => *poisoned.into_inner() = partners,
                }
            }
            Some(Err(e)) => tracing::warn!(error = %e, "Live registry change not followed"),
        }
    }
}

impl AlertsService {
    /// Checks `[alerts]`, loads the registry's business partners and the
    /// state kept in the `ALERTS` bucket.
    pub async fn start(config: Config, client: async_nats::Client) -> Result<Self, AlertsError> {
        let policy =
            escalation::Policy::from_config(&config.alerts).map_err(AlertsError::Config)?;
        let telemetry = if config.telemetry.enabled() {
            Some(liaison_runtime::ops::Listener::bind(&config.telemetry.listen).await?)
        } else {
            None
        };
        let js = jetstream::new(client.clone());
        let (registry, follower) = liaison_runtime::live_registry::Follower::open(&js)
            .await
            .map_err(AlertsError::LiveRegistry)?;
        let business: tracker::Partners =
            Arc::new(std::sync::RwLock::new(business_partners(&registry)));
        let bucket = fold::bucket(&js, Service::Alerts).await?;
        let cursor = Cursor::new(bucket.clone(), Service::Alerts);
        let start = cursor.get().await?;
        let metrics = Arc::new(metrics::Metrics::new());
        let day_ms = 24 * 3600 * 1000;
        let tracker = tracker::Tracker::load(
            bucket,
            business.clone(),
            records::Recorder::new(js.clone()),
            policy,
            i64::try_from(config.streams.delivery_max_age_days)
                .unwrap_or(i64::MAX / day_ms)
                .saturating_mul(day_ms),
            metrics.clone(),
        )
        .await?;
        info!(
            cursor = start,
            alerts = tracker.len(),
            "Alerts state loaded"
        );
        let ready = Arc::new(AtomicBool::new(false));
        let discovery = liaison_runtime::discovery::Registration::start(
            &client,
            liaison_runtime::discovery::Member::Alerts,
            ready.clone(),
        )
        .await?;
        Ok(Self {
            client,
            js,
            cursor,
            start,
            tracker,
            dedup_window_ms: i64::try_from(config.streams.duplicate_window_secs)
                .unwrap_or(i64::MAX / 1000)
                .saturating_mul(1000),
            metrics,
            telemetry,
            ready,
            discovery,
            follower,
            business,
        })
    }

    /// Where `/metrics`, `/healthz` and `/readyz` are served, if configured.
    pub fn telemetry_addr(&self) -> Option<std::net::SocketAddr> {
        self.telemetry
            .as_ref()
            .and_then(liaison_runtime::ops::Listener::local_addr)
    }

    /// Folds EVENTS and escalates until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), AlertsError> {
        let Self {
            client,
            js,
            cursor,
            start,
            tracker,
            dedup_window_ms,
            metrics,
            telemetry,
            ready: bound,
            discovery,
            follower,
            business,
        } = self;
        let followed = tokio::spawn(follow_partners(follower, business, shutdown.child_token()));
        let telemetry = telemetry.map(|listener| {
            let probe = liaison_runtime::ops::Probe {
                registry: metrics.registry.clone(),
                client: client.clone(),
                bound: bound.clone(),
            };
            tokio::spawn(listener.serve(probe, shutdown.child_token()))
        });
        let result = serve::Loop::new(client, js, cursor, start, tracker, dedup_window_ms)
            .run(&bound, shutdown)
            .await;
        bound.store(false, Ordering::Relaxed);
        followed.abort();
        discovery.stop().await;
        if let Some(telemetry) = telemetry {
            telemetry.abort();
        }
        result
    }
}

/// Starts the alerts service and serves until `shutdown`.
pub async fn run(
    config: Config,
    client: async_nats::Client,
    shutdown: CancellationToken,
) -> Result<(), AlertsError> {
    AlertsService::start(config, client)
        .await?
        .run(shutdown)
        .await
}
