//! Reading an agency's inbox: its durable JetStream pull consumer
//! `deliver-<agency>` on stream `DELIVERY`, with explicit acknowledgement
//! (docs/wire-contract.md, "Receiving").
//!
//! [`AgencyClient::next_batch`] hands out [`Received`] deliveries and
//! acknowledges nothing: the caller stores each delivery, then calls
//! [`Received::ack`] (or [`Received::nak`] to have it again now). A delivery
//! not acknowledged within the consumer's ack wait (30 s by default) is
//! delivered again, so a system that crashes between storing and acking sees
//! the same envelope twice: de-duplicate on `envelope.id` (the gateway sends
//! each recipient at most one copy per id), e.g. by storing under the id and
//! treating "already stored" as success — which is what the file adapter
//! ([`crate::adapter`]) does. [`Received::delivery_count`] says how often it came.
//!
//! The consumer is durable: an agency that was offline reads what waited for
//! it (up to `streams.delivery_max_age_days`) the next time it asks, with no
//! catch-up step of its own. [`AgencyClient::inbox`] is the convenience that
//! acknowledges each delivery as soon as it is decoded.
//!
//! Each delivery taken is an `envelope.receive` span, the child of the
//! gateway's `gateway.deliver` span whose W3C context the delivery carries in
//! its headers; it ends when the [`Received`] is dropped. The receiving
//! system can make its own work part of the trace ([`Received::span`],
//! [`Received::trace_context`]).

use crate::client::AgencyClient;
use crate::error::InboxError;
use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use futures_util::StreamExt as _;
use liaison_core::hop::Hop;
use liaison_core::trace::{self, TraceContext};
use liaison_core::{ids, subjects};
use liaison_proto::v1::Delivery;
use prost::Message as _;
use std::time::Duration;

/// Shortest wait asked of the server (it refuses a pull that expires at once).
const MIN_WAIT: Duration = Duration::from_millis(10);

/// One delivery taken from the inbox, not yet acknowledged.
pub struct Received {
    /// The copy this agency may see: the envelope with withheld fields
    /// removed, the labels withheld and the clauses that permitted it.
    pub delivery: Delivery,
    message: jetstream::Message,
    hop: Hop,
}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the delivery itself: it carries personal data.
        f.debug_struct("Received")
            .field("envelope_id", &self.envelope_id())
            .field("delivery_count", &self.delivery_count())
            .finish_non_exhaustive()
    }
}

impl Received {
    /// The envelope's id: the key to de-duplicate on.
    pub fn envelope_id(&self) -> &str {
        self.delivery
            .envelope
            .as_ref()
            .map(|e| e.id.as_str())
            .unwrap_or_default()
    }

    /// How many times this delivery has been handed out (1 the first time).
    pub fn delivery_count(&self) -> i64 {
        self.message.info().map(|i| i.delivered).unwrap_or(1)
    }

    /// The `envelope.receive` span of this delivery (open until it is
    /// dropped): instrument storing it with this to make that part of the
    /// sender's trace.
    pub fn span(&self) -> &tracing::Span {
        self.hop.span()
    }

    /// The W3C trace context to continue from this delivery, if it came with one.
    pub fn trace_context(&self) -> Option<TraceContext> {
        self.hop.context()
    }

    /// Whether it was handed out before and not acknowledged then.
    pub fn is_redelivery(&self) -> bool {
        self.delivery_count() > 1
    }

    /// Acknowledges it, waiting for the server to confirm, so it is never
    /// delivered again. Call this only once the delivery is stored.
    pub async fn ack(&self) -> Result<(), InboxError> {
        self.message
            .double_ack()
            .await
            .map_err(|e| self.ack_error(e))
    }

    /// Hands it back to be delivered again now (it could not be stored).
    pub async fn nak(&self) -> Result<(), InboxError> {
        self.message
            .ack_with(AckKind::Nak(None))
            .await
            .map_err(|e| self.ack_error(e))
    }

    /// Hands it back to be delivered again after `delay`.
    pub async fn nak_after(&self, delay: Duration) -> Result<(), InboxError> {
        self.message
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(|e| self.ack_error(e))
    }

    /// The delivery, giving up the means to acknowledge it.
    pub fn into_delivery(self) -> Delivery {
        self.delivery
    }

    fn ack_error(&self, e: async_nats::Error) -> InboxError {
        InboxError::Ack {
            envelope_id: self.envelope_id().to_owned(),
            reason: e.to_string(),
        }
    }
}

impl AgencyClient {
    async fn delivery_consumer(&self) -> Result<&PullConsumer, InboxError> {
        let name = subjects::delivery_consumer(&self.agency);
        self.consumer
            .get_or_try_init(|| async {
                jetstream::new(self.client.clone())
                    .get_consumer_from_stream(name.clone(), subjects::DELIVERY_STREAM)
                    .await
                    .map_err(|e| InboxError::Consumer {
                        consumer: name.clone(),
                        reason: e.to_string(),
                    })
            })
            .await
    }

    /// The `envelope.receive` span of a delivery: ids, kind and delivery
    /// count, nothing of its content.
    fn receive_span(&self, delivery: &Delivery, message: &jetstream::Message) -> Hop {
        let envelope = delivery.envelope.as_ref();
        let envelope_id = envelope
            .map(|e| e.id.as_str())
            .filter(|id| ids::validate_envelope_id(id).is_ok())
            .unwrap_or_default();
        let span = tracing::info_span!(
            "envelope.receive",
            otel.kind = "consumer",
            agency = self.agency.as_str(),
            kind = envelope.map(|e| e.kind()).unwrap_or_default(),
            envelope_id,
            delivered = message.info().map(|i| i.delivered).unwrap_or(1),
        );
        Hop::continuing(span, trace::extract(message.headers.as_ref()))
    }

    /// Takes up to `max` deliveries, waiting up to `wait` for the first, and
    /// returns as soon as some are there. Nothing is acknowledged: call
    /// [`Received::ack`] on each once it is stored.
    ///
    /// A message that is not a `liaison.v1.Delivery` fails the call with
    /// [`InboxError::Undecodable`] and is left unacknowledged (it comes back
    /// after the ack wait, as do the others of this batch).
    pub async fn next_batch(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Received>, InboxError> {
        let consumer = self.delivery_consumer().await?;
        let mut batch = consumer
            .fetch()
            .max_messages(max.max(1))
            .expires(wait.max(MIN_WAIT))
            .messages()
            .await
            .map_err(|e| InboxError::Fetch(e.to_string()))?;
        let mut out = Vec::new();
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| InboxError::Fetch(e.to_string()))?;
            let delivery = Delivery::decode(message.payload.as_ref()).map_err(|e| {
                InboxError::Undecodable {
                    stream_sequence: message.info().map(|i| i.stream_sequence).unwrap_or(0),
                    reason: e.to_string(),
                }
            })?;
            let hop = self.receive_span(&delivery, &message);
            out.push(Received {
                delivery,
                message,
                hop,
            });
        }
        Ok(out)
    }

    /// Takes up to `max` deliveries, waiting up to `wait` for the first, and
    /// acknowledges each as soon as it is decoded: for a caller that has
    /// nothing to store first (a display). Systems that store deliveries use
    /// [`next_batch`](Self::next_batch) and acknowledge after storing.
    pub async fn inbox(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, InboxError> {
        let mut out = Vec::new();
        for received in self.next_batch(max, wait).await? {
            received.ack().await?;
            out.push(received.into_delivery());
        }
        Ok(out)
    }
}
