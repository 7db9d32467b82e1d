//! `liaison-cases`: the partnership's case record.
//!
//! Folds EVENTS, in order, into cases ([`state`]): lifecycle (referral
//! received → triage → open → under review → closed, a former subject kept
//! for review), owner and participants, each owning unit's priority list,
//! risk level, review dates and information requests. The state lives in the
//! `CASES` KV bucket with the EVENTS cursor, so a restart resumes and an
//! empty bucket is rebuilt from EVENTS. It keeps case participation (owner,
//! participants, status) in the `PARTICIPATION` bucket, which the gateway
//! reads for need to know; raises PriorityChanged, ReviewDue and
//! InformationRequestOverdue through the gateway's internal door (liaison-runtime's
//! [`liaison_runtime::fold::Outbox`]); records every change of a case for the
//! ledger; and answers the gateway's case queries for an agency with the
//! cases that agency participates in ([`query`]). It registers with the
//! NATS service API (`liaison-cases`: the `query` and `status` endpoints)
//! and serves `/metrics`, `/healthz` and `/readyz` on `[telemetry] listen`
//! ([`metrics`]).

mod folding;
pub mod metrics;
pub mod query;
pub mod state;
pub mod store;

use async_nats::jetstream;
use async_nats::service::endpoint::Endpoint;
use futures_util::StreamExt;
use liaison_core::subjects;
use liaison_core::system::Service;
use liaison_runtime::config::Config;
use liaison_runtime::discovery::{Member, Registration};
use liaison_runtime::fold::{Cursor, FoldError, Outbox};
use liaison_runtime::ops::{Listener, OpsError, Probe};
use prost::Message as _;
use state::{State, Timers};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Why the cases service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum CasesError {
    #[error(transparent)]
    Fold(#[from] FoldError),
    #[error(transparent)]
    Nats(#[from] liaison_core::NatsError),
    #[error(transparent)]
    Telemetry(#[from] OpsError),
    #[error(transparent)]
    Discovery(#[from] liaison_runtime::discovery::DiscoveryError),
}

/// The cases service, its state loaded from KV.
pub struct CasesService {
    client: async_nats::Client,
    js: jetstream::Context,
    store: store::Store,
    cursor: Cursor,
    outbox: Outbox,
    state: Arc<Mutex<State>>,
    timers: Timers,
    queries: Endpoint,
    after: u64,
    metrics: Arc<metrics::Metrics>,
    telemetry: Option<Listener>,
    /// Set while EVENTS is being folded: what `/readyz` and `status` report.
    ready: Arc<AtomicBool>,
    discovery: Registration,
}

impl CasesService {
    /// Loads the state from the `CASES` bucket and subscribes to case queries.
    pub async fn start(config: Config, client: async_nats::Client) -> Result<Self, CasesError> {
        let telemetry = if config.telemetry.enabled() {
            Some(Listener::bind(&config.telemetry.listen).await?)
        } else {
            None
        };
        let js = jetstream::new(client.clone());
        let bucket = liaison_runtime::fold::bucket(&js, Service::Cases).await?;
        let store = store::Store::open(&js, bucket.clone()).await?;
        let cursor = Cursor::new(bucket.clone(), Service::Cases);
        let after = cursor.get().await?;
        let state = store.load().await?;
        let outbox = Outbox::load(bucket, Service::Cases).await?;
        info!(
            cases = state.cases.len(),
            after,
            pending = outbox.len(),
            "Cases loaded"
        );
        let metrics = Arc::new(metrics::Metrics::new());
        metrics.count_cases(&state);
        metrics
            .cursor
            .set(&[], liaison_runtime::fold::applied_through(after));
        let ready = Arc::new(AtomicBool::new(false));
        let discovery = Registration::start(&client, Member::Cases, ready.clone()).await?;
        let queries = discovery.endpoint("query", subjects::CASES_QUERY).await?;
        Ok(Self {
            client,
            js,
            store,
            cursor,
            outbox,
            state: Arc::new(Mutex::new(state)),
            timers: Timers::from_config(&config.cases),
            queries,
            after,
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

    /// Folds EVENTS and answers queries until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), CasesError> {
        let Self {
            client,
            js,
            store,
            cursor,
            mut outbox,
            state,
            timers,
            mut queries,
            after,
            metrics,
            telemetry,
            ready,
            discovery,
        } = self;
        let answering = {
            let state = state.clone();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    let request = tokio::select! {
                        () = stop.cancelled() => break,
                        r = queries.next() => r,
                    };
                    let Some(request) = request else { break };
                    let answer = query::answer(&state, &request.message.payload);
                    if let Err(e) = request.respond(Ok(answer.encode_to_vec().into())).await {
                        warn!(error = %e, "Case query answer not sent");
                    }
                }
            })
        };
        let telemetry = telemetry.map(|listener| {
            let probe = Probe {
                registry: metrics.registry.clone(),
                client: client.clone(),
                bound: ready.clone(),
            };
            tokio::spawn(listener.serve(probe, shutdown.child_token()))
        });
        let mut fold = folding::Fold {
            client,
            js,
            store,
            cursor,
            state,
            timers,
            last: after,
            metrics,
        };
        let result = fold.run(&mut outbox, after, &ready, &shutdown).await;
        ready.store(false, Ordering::Relaxed);
        discovery.stop().await;
        answering.abort();
        if let Some(telemetry) = telemetry {
            telemetry.abort();
        }
        result
    }
}

/// Starts the cases service and serves until `shutdown`.
pub async fn run(
    config: Config,
    client: async_nats::Client,
    shutdown: CancellationToken,
) -> Result<(), CasesError> {
    CasesService::start(config, client)
        .await?
        .run(shutdown)
        .await
}
