//! The alerts service's one loop: apply the next event of EVENTS, or, once
//! caught up with it, queue the escalations that fell due and raise what the
//! outbox holds; sleep until the next event, the next escalation due, the
//! next raise or the moment to store the cursor, whichever comes first.
//! Failures are waited out and retried (reading EVENTS again from the last
//! event applied whole), never spun on. Each event is applied in an
//! `alerts.fold` span that continues its trace.

use crate::alert::accepted_ms;
use crate::tracker::Tracker;
use crate::{AlertsError, now_ms};
use async_nats::jetstream;
use liaison_core::hop::Hop;
use liaison_runtime::fold::{Cursor, Event, Events, FoldError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, info_span, warn};

/// The `alerts.fold` span of one event, continuing its trace: its kind, id
/// and sequence, nothing of its content.
fn fold_span(event: &Event) -> Hop {
    let envelope = event.envelope();
    let id = if liaison_core::ids::validate_envelope_id(&envelope.id).is_ok() {
        envelope.id.as_str()
    } else {
        ""
    };
    Hop::continuing(
        info_span!(
            "alerts.fold",
            otel.kind = "consumer",
            kind = envelope.kind(),
            envelope_id = id,
            seq = event.seq,
        ),
        event.trace.clone(),
    )
}

/// How long to wait before trying a failed step again.
const RETRY: Duration = Duration::from_secs(1);
/// How often escalations the gateway has not echoed are raised again (the
/// gateway answers a re-raise DUPLICATE and delivers nothing twice).
const RAISE_AGAIN: Duration = Duration::from_secs(5);
/// How long after the last event the cursor is stored when nothing changed.
const CURSOR_IDLE: Duration = Duration::from_millis(250);
/// The longest sleep between looks at the clock.
const MAX_SLEEP: Duration = Duration::from_secs(60);

pub(crate) struct Loop {
    client: async_nats::Client,
    js: jetstream::Context,
    cursor: Cursor,
    /// The cursor the service started from (0: rebuilding from the start).
    start: u64,
    tracker: Tracker,
    dedup_window_ms: i64,
    /// Events up to here are applied; up to `stored`, the cursor says so.
    applied: u64,
    stored: u64,
    /// When the cursor is next stored, if it lags.
    store_at: Option<Instant>,
    /// When the outbox is next raised, if it holds anything.
    raise_at: Option<Instant>,
    /// Queuing failed: not before this.
    queue_after: Option<Instant>,
}

impl Loop {
    pub(crate) fn new(
        client: async_nats::Client,
        js: jetstream::Context,
        cursor: Cursor,
        start: u64,
        tracker: Tracker,
        dedup_window_ms: i64,
    ) -> Self {
        let raise_at = tracker.has_pending().then(Instant::now);
        Self {
            client,
            js,
            cursor,
            start,
            tracker,
            dedup_window_ms,
            applied: start,
            stored: start,
            store_at: None,
            raise_at,
            queue_after: None,
        }
    }

    /// Serves until `shutdown`; `bound` is set while EVENTS is being read.
    pub(crate) async fn run(
        mut self,
        bound: &AtomicBool,
        shutdown: CancellationToken,
    ) -> Result<(), AlertsError> {
        let mut events = Events::after(&self.js, self.applied).await?;
        bound.store(true, Ordering::Relaxed);
        loop {
            let caught_up = events.caught_up();
            if caught_up {
                self.escalate().await;
            }
            let wake = self.wake(caught_up);
            tokio::select! {
                () = shutdown.cancelled() => break,
                event = events.next() => {
                    if let Err(e) = self.apply(event, caught_up).await {
                        warn!(error = %e, seq = self.applied, "Folding EVENTS failed; reading again");
                        tokio::select! {
                            () = shutdown.cancelled() => break,
                            () = tokio::time::sleep(RETRY) => {}
                        }
                        match Events::after(&self.js, self.applied).await {
                            Ok(reader) => events = reader,
                            Err(e) => warn!(error = %e, "EVENTS not readable"),
                        }
                    }
                }
                () = tokio::time::sleep_until(wake) => {
                    if self.store_at.is_some_and(|at| at <= Instant::now()) {
                        self.store_cursor().await;
                    }
                }
            }
        }
        if self.applied > self.stored {
            self.store_cursor().await;
        }
        Ok(())
    }

    /// Applies one event: its decision records, the alert, then the cursor
    /// (at once if the alert changed, otherwise once events pause).
    async fn apply(
        &mut self,
        event: Result<Event, FoldError>,
        caught_up: bool,
    ) -> Result<(), AlertsError> {
        let event = event?;
        // Rebuilding from the start: records of events older than the
        // de-duplication window were published when first applied.
        let record = self.start != 0
            || caught_up
            || now_ms().saturating_sub(accepted_ms(&event.accepted)) < self.dedup_window_ms;
        let hop = fold_span(&event);
        let span = hop.span().clone();
        let changed = self
            .tracker
            .apply(&event, record, now_ms(), hop.context())
            .instrument(span)
            .await?;
        self.applied = event.seq;
        if changed {
            self.store_cursor().await;
        } else {
            self.store_at = Some(Instant::now() + CURSOR_IDLE);
        }
        Ok(())
    }

    async fn store_cursor(&mut self) {
        match self.cursor.set(self.applied).await {
            Ok(()) => {
                self.stored = self.applied;
                self.store_at = None;
            }
            Err(e) => {
                warn!(error = %e, "Cursor not stored; trying again");
                self.store_at = Some(Instant::now() + RETRY);
            }
        }
    }

    /// Queues the escalations that fell due and raises the outbox when it is time.
    async fn escalate(&mut self) {
        if self.queue_after.is_none_or(|at| at <= Instant::now()) {
            self.queue_after = None;
            match self.tracker.queue_due(now_ms()).await {
                Ok(true) => self.raise_at = Some(Instant::now()),
                Ok(false) => {}
                Err(e) => {
                    warn!(error = %e, "Escalations not queued; trying again");
                    self.queue_after = Some(Instant::now() + RETRY);
                }
            }
        }
        if self.raise_at.is_some_and(|at| at <= Instant::now()) {
            if let Err(e) = self.tracker.flush(&self.client).await {
                warn!(error = %e, "Escalations not raised; trying again");
            }
            self.raise_at = self
                .tracker
                .has_pending()
                .then(|| Instant::now() + RAISE_AGAIN);
        }
    }

    /// When to look again if no event comes.
    fn wake(&self, caught_up: bool) -> Instant {
        let now = Instant::now();
        let mut wake = now + MAX_SLEEP;
        if caught_up {
            if let Some(at) = self.queue_after {
                wake = wake.min(at);
            } else if let Some(due) = self.tracker.next_due_ms() {
                let wait = u64::try_from(due.saturating_sub(now_ms())).unwrap_or(0);
                wake = wake.min(now + Duration::from_millis(wait));
            }
            if let Some(at) = self.raise_at {
                wake = wake.min(at);
            }
        }
        if let Some(at) = self.store_at {
            wake = wake.min(at);
        }
        wake
    }
}
