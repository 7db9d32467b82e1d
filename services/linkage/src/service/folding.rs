//! The linkage service's two sides of one event: folding it into the index
//! in a `linkage.fold` span that continues the event's trace (its matches
//! carry the span's context in their `traceparent` field, kept with them in
//! the outbox), and raising the outbox once caught up, each match recorded
//! first as a COMBINATION record published with the same context.

use super::{LinkageError, LinkageService};
use crate::alert;
use async_nats::HeaderMap;
use liaison_core::hop::Hop;
use liaison_core::system::Service;
use liaison_core::trace::{self, TraceContext};
use liaison_runtime::fold;
use prost::Message as _;
use tracing::{Instrument as _, info, info_span};

impl LinkageService {
    /// Applies one event, in its `linkage.fold` span; keeps what a referral
    /// matches in the outbox, continuing the event's trace.
    pub(super) async fn fold(&mut self, event: fold::Event) -> Result<(), LinkageError> {
        let envelope = event.envelope();
        let hop = Hop::continuing(
            info_span!(
                "linkage.fold",
                otel.kind = "consumer",
                kind = envelope.kind(),
                envelope_id = if liaison_core::ids::validate_envelope_id(&envelope.id).is_ok() {
                    envelope.id.as_str()
                } else {
                    ""
                },
                seq = event.seq,
                matches = tracing::field::Empty,
            ),
            event.trace.clone(),
        );
        let span = hop.span().clone();
        self.apply(event, &hop).instrument(span).await
    }

    async fn apply(&mut self, event: fold::Event, hop: &Hop) -> Result<(), LinkageError> {
        let envelope = event.envelope();
        self.metrics.folded.inc(&[envelope.kind()]);
        self.outbox.seen(&event).await?;
        let decide = event.seq > self.decided;
        let traceparent = hop.context().map(|c| c.parent.to_string());
        let found = self.index.apply(event.seq, &event.accepted, decide);
        hop.span().record("matches", found.len());
        for found in found {
            if let Some(mut envelope) = alert::envelope(&found, &self.grounds) {
                if let Some(traceparent) = &traceparent {
                    envelope.traceparent.clone_from(traceparent);
                }
                if !self.outbox.contains(&envelope.id) {
                    self.metrics.matches.inc(&[envelope.kind()]);
                }
                info!(
                    kind = envelope.kind(),
                    envelope_id = %envelope.id,
                    case_id = %envelope.case_id,
                    seq = event.seq,
                    "Referral matched"
                );
                self.outbox.add(envelope).await?;
            }
        }
        self.applied = event.seq;
        self.count();
        Ok(())
    }

    pub(super) fn count(&self) {
        let (tokens, cases) = self.index.len();
        self.metrics.tokens.set(&[], tokens as u64);
        self.metrics.cases.set(&[], cases as u64);
        self.metrics.outbox.set(&[], self.outbox.len() as u64);
        self.metrics
            .cursor
            .set(&[], liaison_runtime::fold::applied_through(self.applied));
    }

    /// Records each match about to be raised, then raises them.
    pub(super) async fn raise(&mut self) -> Result<(), LinkageError> {
        let records: Vec<_> = self
            .outbox
            .to_raise()
            .map(|e| {
                let context = TraceContext::from_field(&e.traceparent);
                let mut record = alert::combination(e);
                if let Some(context) = &context {
                    record.trace_id = context.parent.trace_id_hex();
                }
                (record, context)
            })
            .collect();
        for (record, context) in &records {
            self.record(record, context.as_ref()).await?;
        }
        self.outbox.flush(&self.client).await?;
        self.count();
        Ok(())
    }

    /// Publishes a decision record to DECISIONS (de-duplicated on its id),
    /// with the trace context of the match it records.
    async fn record(
        &self,
        record: &liaison_proto::v1::AuditRecord,
        context: Option<&TraceContext>,
    ) -> Result<(), LinkageError> {
        let fail = |reason: String| LinkageError::Record {
            record: record.record_id.clone(),
            reason,
        };
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", record.record_id.as_str());
        if let Some(context) = context {
            trace::inject(&mut headers, context);
        }
        self.js
            .publish_with_headers(
                Service::Linkage.decisions(),
                headers,
                record.encode_to_vec().into(),
            )
            .await
            .map_err(|e| fail(e.to_string()))?
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok(())
    }
}
