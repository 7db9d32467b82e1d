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
//! InformationRequestOverdue through the gateway's internal door (kit
//! [`liaison_kit::fold::Outbox`]); records every change of a case for the
//! ledger; and answers the gateway's case queries for an agency with the
//! cases that agency participates in ([`query`]).

pub mod query;
pub mod state;
pub mod store;

use async_nats::jetstream;
use futures_util::StreamExt;
use liaison_kit::config::Config;
use liaison_kit::fold::{Cursor, Events, FoldError, Outbox};
use liaison_kit::subjects;
use liaison_kit::system::Service;
use liaison_proto::v1::AuditRecord;
use prost::Message as _;
use state::{State, Timers};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Why the cases service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum CasesError {
    #[error(transparent)]
    Fold(#[from] FoldError),
    #[error("NATS: {0}")]
    Nats(String),
}

/// How long the fold waits for an event before looking at its timers.
const TICK: Duration = Duration::from_millis(250);

/// The cases service, its state loaded from KV.
pub struct CasesService {
    client: async_nats::Client,
    js: jetstream::Context,
    store: store::Store,
    cursor: Cursor,
    outbox: Outbox,
    state: Arc<Mutex<State>>,
    timers: Timers,
    queries: async_nats::Subscriber,
    after: u64,
}

impl CasesService {
    /// Loads the state from the `CASES` bucket and subscribes to case queries.
    pub async fn start(config: Config, client: async_nats::Client) -> Result<Self, CasesError> {
        let js = jetstream::new(client.clone());
        let bucket = liaison_kit::fold::bucket(&js, Service::Cases).await?;
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
        let queries = client
            .subscribe(subjects::CASES_QUERY)
            .await
            .map_err(|e| CasesError::Nats(format!("subscribe to case queries: {e}")))?;
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
        })
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
        } = self;
        let answering = {
            let state = state.clone();
            let client = client.clone();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    let message = tokio::select! {
                        () = stop.cancelled() => break,
                        m = queries.next() => m,
                    };
                    let Some(message) = message else { break };
                    let answer = query::answer(&state, &message.payload);
                    if let Some(reply) = message.reply
                        && let Err(e) = client.publish(reply, answer.encode_to_vec().into()).await
                    {
                        warn!(error = %e, "Case query answer not sent");
                    }
                }
            })
        };
        let mut fold = Fold {
            client,
            js: js.clone(),
            store,
            cursor,
            state,
            timers,
            last: after,
        };
        let result = fold.run(&mut outbox, after, &shutdown).await;
        answering.abort();
        result
    }
}

/// The fold loop's working set.
struct Fold {
    client: async_nats::Client,
    js: jetstream::Context,
    store: store::Store,
    cursor: Cursor,
    state: Arc<Mutex<State>>,
    timers: Timers,
    last: u64,
}

fn now() -> i64 {
    i64::try_from(liaison_kit::time::unix_now()).unwrap_or(i64::MAX)
}

impl Fold {
    async fn run(
        &mut self,
        outbox: &mut Outbox,
        after: u64,
        shutdown: &CancellationToken,
    ) -> Result<(), CasesError> {
        let mut events = Events::after(&self.js, after).await?;
        let mut saved = after;
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => break,
                event = events.next_within(TICK) => event?,
            };
            if let Some(event) = event {
                self.apply(&event, outbox).await?;
                self.last = event.seq;
            }
            if events.caught_up() {
                if self.last != saved {
                    self.cursor.set(self.last).await?;
                    saved = self.last;
                }
                let due = self.lock().due(now());
                for envelope in due {
                    outbox.add(envelope).await?;
                }
                if !outbox.is_empty()
                    && let Err(e) = outbox.flush(&self.client).await
                {
                    warn!(error = %e, "Events not raised yet; will retry");
                }
            }
        }
        if self.last != saved {
            self.cursor.set(self.last).await?;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies one event: the events it raises are kept first, then the
    /// changed objects stored, then its records published.
    async fn apply(
        &mut self,
        event: &liaison_kit::fold::Event,
        outbox: &mut Outbox,
    ) -> Result<(), CasesError> {
        outbox.seen(event).await?;
        let at = event
            .accepted
            .accepted_at
            .as_ref()
            .map_or_else(now, |t| t.seconds);
        let (changes, snapshot) = {
            let mut state = self.lock();
            let changes = state.apply(event.seq, at, event.envelope(), self.timers);
            let snapshot = store::Snapshot::of(&state, &changes);
            (changes, snapshot)
        };
        for envelope in changes.raise {
            outbox.add(envelope).await?;
        }
        self.store.save(&snapshot).await?;
        for record in &changes.records {
            self.record(record).await?;
        }
        Ok(())
    }

    async fn record(&self, record: &AuditRecord) -> Result<(), CasesError> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", record.record_id.as_str());
        self.js
            .publish_with_headers(
                Service::Cases.decisions(),
                headers,
                record.encode_to_vec().into(),
            )
            .await
            .map_err(|e| CasesError::Nats(e.to_string()))?
            .await
            .map_err(|e| CasesError::Nats(e.to_string()))?;
        Ok(())
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
