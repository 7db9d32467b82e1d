//! The cases service's fold loop: EVENTS in order, each applied to the
//! state ([`crate::state`]) in a `cases.fold` span that continues the
//! event's trace (the gateway's ingress span, from EVENTS' headers); what an
//! event raises carries that span's context in its `traceparent` field, so
//! the gateway's internal door continues the same trace, and its records
//! carry it in their headers, so the ledger's appends do too. Once caught
//! up, the cursor is stored, reminders that fell due are queued, and the
//! outbox is raised. It answers no queries ([`crate::query`] does).

use crate::CasesError;
use crate::metrics::Metrics;
use crate::state::{State, Timers};
use crate::store;
use async_nats::jetstream;
use liaison_core::NatsContext as _;
use liaison_core::hop::Hop;
use liaison_core::system::Service;
use liaison_proto::v1::{AuditRecord, Envelope};
use liaison_runtime::fold::{Cursor, Event, Events, Outbox};
use prost::Message as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, info_span, warn};

/// How long the fold waits for an event before looking at its timers.
const TICK: Duration = Duration::from_millis(250);

/// The fold loop's working set.
pub(crate) struct Fold {
    pub(crate) client: async_nats::Client,
    pub(crate) js: jetstream::Context,
    pub(crate) store: store::Store,
    pub(crate) cursor: Cursor,
    pub(crate) state: Arc<Mutex<State>>,
    pub(crate) timers: Timers,
    pub(crate) last: u64,
    pub(crate) metrics: Arc<Metrics>,
}

fn now() -> i64 {
    i64::try_from(liaison_core::time::unix_now()).unwrap_or(i64::MAX)
}

/// The `cases.fold` span of one event: its kind, id and sequence, nothing
/// of its content.
fn fold_span(event: &Event) -> Hop {
    let envelope = event.envelope();
    let id = if liaison_core::ids::validate_envelope_id(&envelope.id).is_ok() {
        envelope.id.as_str()
    } else {
        ""
    };
    Hop::continuing(
        info_span!(
            "cases.fold",
            otel.kind = "consumer",
            kind = envelope.kind(),
            envelope_id = id,
            seq = event.seq,
        ),
        event.trace.clone(),
    )
}

impl Fold {
    /// Folds until `shutdown`; `bound` is set once EVENTS is being read.
    pub(crate) async fn run(
        &mut self,
        outbox: &mut Outbox,
        after: u64,
        bound: &AtomicBool,
        shutdown: &CancellationToken,
    ) -> Result<(), CasesError> {
        let mut events = Events::after(&self.js, after).await?;
        bound.store(true, Ordering::Relaxed);
        let mut saved = after;
        let mut counted = None;
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => break,
                event = events.next_within(TICK) => event?,
            };
            if let Some(event) = event {
                let hop = fold_span(&event);
                let span = hop.span().clone();
                self.apply(&event, outbox, &hop).instrument(span).await?;
                self.last = event.seq;
                self.metrics
                    .cursor
                    .set(&[], liaison_runtime::fold::applied_through(event.seq));
            }
            if events.caught_up() {
                if self.last != saved {
                    self.cursor.set(self.last).await?;
                    saved = self.last;
                }
                if counted != Some(self.last) {
                    self.metrics.count_cases(&self.lock());
                    counted = Some(self.last);
                }
                let due = self.lock().due(now());
                for envelope in due {
                    if !outbox.contains(&envelope.id) {
                        self.metrics.timers_fired.inc(&[envelope.kind()]);
                    }
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

    /// Applies one event: the events it raises are kept first (continuing
    /// its trace), then the changed objects stored, then its records
    /// published.
    async fn apply(
        &mut self,
        event: &Event,
        outbox: &mut Outbox,
        hop: &Hop,
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
        self.metrics.folded.inc(&[event.envelope().kind()]);
        let traceparent = hop.context().map(|c| c.parent.to_string());
        for mut envelope in changes.raise {
            if let Some(traceparent) = &traceparent {
                envelope.traceparent.clone_from(traceparent);
            }
            if is_priority_change(&envelope) && !outbox.contains(&envelope.id) {
                self.metrics.priority_changes.inc(&[]);
            }
            outbox.add(envelope).await?;
        }
        self.store.save(&snapshot).await?;
        for mut record in changes.records {
            if record.trace_id.is_empty() {
                record.trace_id = hop.trace_id().unwrap_or_default();
            }
            self.record(&record, hop).await?;
        }
        Ok(())
    }

    async fn record(&self, record: &AuditRecord, hop: &Hop) -> Result<(), CasesError> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", record.record_id.as_str());
        hop.inject(&mut headers);
        self.js
            .publish_with_headers(
                Service::Cases.decisions(),
                headers,
                record.encode_to_vec().into(),
            )
            .await
            .nats("publish a cases decision record")?
            .await
            .nats("stored acknowledgement of a cases decision record")?;
        Ok(())
    }
}

fn is_priority_change(envelope: &Envelope) -> bool {
    envelope.kind() == "priority_changed"
}
