//! `liaison-alerts`: business alerts, acknowledged or escalated.
//!
//! Folds EVENTS, in order, into the state of every alert ([`alert`]): who
//! received it, which business partners among them must acknowledge it,
//! which have (`alert_ack`, `in_reply_to` = the alert), and the escalations
//! raised. The state lives in the `ALERTS` KV bucket with the fold cursor
//! ([`store`], `liaison_kit::fold`): a restart resumes after the cursor, an
//! empty bucket is rebuilt from EVENTS. When an alert's escalation is due
//! ([`escalation`]: periods per threat level from `[alerts]`), it raises an
//! `AlertEscalated` through the gateway's internal door, via the outbox, to
//! the issuing unit and the partners still silent. Each acknowledgement and
//! escalation is a decision record ([`records`]). [`board`] is what
//! `liaison alerts` shows. It decides nothing about who receives what: the
//! gateway's policy does.

pub mod alert;
pub mod board;
pub mod escalation;
pub mod metrics;
pub mod records;
pub mod store;
pub mod tracker;

use async_nats::jetstream;
use liaison_kit::config::Config;
use liaison_kit::fold::{self, Cursor, Events, FoldError};
use liaison_kit::registry::{AgencyKind, Registry};
use liaison_kit::system::Service;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error("NATS: {0}")]
    Nats(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Fold(#[from] FoldError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Telemetry(#[from] liaison_kit::ops::OpsError),
}

/// The wall clock, in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// How long to wait before reading EVENTS again after a failure.
const RETRY: Duration = Duration::from_secs(1);
/// How often escalations the gateway has not echoed are raised again (the
/// gateway answers a re-raise DUPLICATE and delivers nothing twice).
const RAISE_AGAIN: Duration = Duration::from_secs(5);
/// How long after the last event the cursor is stored when nothing changed.
const CURSOR_IDLE: Duration = Duration::from_millis(250);
/// The longest sleep between looks at the clock.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// An alerts service with its state loaded.
pub struct AlertsService {
    client: async_nats::Client,
    js: jetstream::Context,
    cursor: Cursor,
    start: u64,
    tracker: tracker::Tracker,
    dedup_window_ms: i64,
    metrics: Arc<metrics::Metrics>,
    telemetry: Option<liaison_kit::ops::Listener>,
}

impl AlertsService {
    /// Checks `[alerts]`, loads the registry's business partners and the
    /// state kept in the `ALERTS` bucket.
    pub async fn start(config: Config, client: async_nats::Client) -> Result<Self, AlertsError> {
        let policy = escalation::Policy::from_config(&config.alerts).map_err(AlertsError::Config)?;
        let registry = Registry::load(&config.paths.registry)
            .map_err(|e| AlertsError::Config(e.to_string()))?;
        let business = registry
            .agencies()
            .filter(|a| a.kind == AgencyKind::Business)
            .map(|a| a.id.clone())
            .collect();
        let telemetry = if config.telemetry.enabled() {
            Some(liaison_kit::ops::Listener::bind(&config.telemetry.listen).await?)
        } else {
            None
        };
        let js = jetstream::new(client.clone());
        let bucket = fold::bucket(&js, Service::Alerts).await?;
        let cursor = Cursor::new(bucket.clone(), Service::Alerts);
        let start = cursor.get().await?;
        let metrics = Arc::new(metrics::Metrics::new());
        let day_ms = 24 * 3600 * 1000;
        let tracker = tracker::Tracker::load(
            bucket,
            business,
            records::Recorder::new(js.clone()),
            policy,
            i64::try_from(config.streams.delivery_max_age_days)
                .unwrap_or(i64::MAX / day_ms)
                .saturating_mul(day_ms),
            metrics.clone(),
        )
        .await?;
        info!(cursor = start, alerts = tracker.len(), "Alerts state loaded");
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
        })
    }

    /// Where `/metrics`, `/healthz` and `/readyz` are served, if configured.
    pub fn telemetry_addr(&self) -> Option<std::net::SocketAddr> {
        self.telemetry
            .as_ref()
            .and_then(liaison_kit::ops::Listener::local_addr)
    }

    /// Folds EVENTS and escalates until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), AlertsError> {
        let Self {
            client,
            js,
            cursor,
            start,
            mut tracker,
            dedup_window_ms,
            metrics,
            telemetry,
        } = self;
        let bound = Arc::new(AtomicBool::new(false));
        let telemetry = telemetry.map(|listener| {
            let probe = liaison_kit::ops::Probe {
                registry: metrics.registry.clone(),
                client: client.clone(),
                bound: bound.clone(),
            };
            tokio::spawn(listener.serve(probe, shutdown.child_token()))
        });
        // Events at or below `applied` are applied; `stored` is in the bucket.
        let (mut applied, mut stored) = (start, start);
        let mut events = Events::after(&js, applied).await?;
        bound.store(true, Ordering::Relaxed);
        let mut raise_at: Option<Instant> = tracker.has_pending().then(Instant::now);
        let mut last_event = Instant::now();
        let result = loop {
            let caught_up = events.caught_up();
            // Rebuilding: folding from the start, not yet caught up.
            let rebuilding = start == 0 && !caught_up;
            if caught_up {
                match tracker.queue_due(now_ms()).await {
                    Ok(true) => raise_at = Some(Instant::now()),
                    Ok(false) => {}
                    Err(e) => warn!(error = %e, "Escalations not queued; trying again"),
                }
                if raise_at.is_some_and(|at| at <= Instant::now()) {
                    if let Err(e) = tracker.flush(&client).await {
                        warn!(error = %e, "Escalations not raised; trying again");
                    }
                    raise_at = tracker
                        .has_pending()
                        .then(|| Instant::now() + RAISE_AGAIN);
                }
            }
            let mut wake = Instant::now() + MAX_SLEEP;
            if caught_up && let Some(due) = tracker.next_due_ms() {
                let wait = u64::try_from(due.saturating_sub(now_ms())).unwrap_or(0);
                wake = wake.min(Instant::now() + Duration::from_millis(wait));
            }
            if let Some(at) = raise_at {
                wake = wake.min(at);
            }
            if applied > stored {
                wake = wake.min(last_event + CURSOR_IDLE);
            }
            tokio::select! {
                () = shutdown.cancelled() => break Ok(()),
                event = events.next() => {
                    let outcome = match event {
                        Ok(event) => {
                            let record = !rebuilding
                                || now_ms().saturating_sub(alert::accepted_ms(&event.accepted))
                                    < dedup_window_ms;
                            tracker
                                .apply(&event, record, now_ms())
                                .await
                                .map(|changed| (event.seq, changed))
                        }
                        Err(e) => Err(e.into()),
                    };
                    match outcome {
                        Ok((seq, changed)) => {
                            applied = seq;
                            last_event = Instant::now();
                            if changed {
                                match cursor.set(applied).await {
                                    Ok(()) => stored = applied,
                                    Err(e) => warn!(error = %e, "Cursor not stored"),
                                }
                            }
                        }
                        Err(e) => {
                            // Read again from the last event applied whole.
                            warn!(error = %e, seq = applied, "Folding EVENTS failed; reading again");
                            tokio::select! {
                                () = shutdown.cancelled() => break Ok(()),
                                () = tokio::time::sleep(RETRY) => {}
                            }
                            match Events::after(&js, applied).await {
                                Ok(reader) => events = reader,
                                Err(e) => warn!(error = %e, "EVENTS not readable"),
                            }
                        }
                    }
                }
                () = tokio::time::sleep_until(wake) => {
                    if applied > stored && last_event + CURSOR_IDLE <= Instant::now() {
                        match cursor.set(applied).await {
                            Ok(()) => stored = applied,
                            Err(e) => warn!(error = %e, "Cursor not stored"),
                        }
                    }
                }
            }
        };
        bound.store(false, Ordering::Relaxed);
        if applied > stored
            && let Err(e) = cursor.set(applied).await
        {
            warn!(error = %e, "Cursor not stored at stop");
        }
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
