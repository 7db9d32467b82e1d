//! Reading an agency's inbox through the gateway: requests on
//! `liaison.ingress.<agency>.inbox.next` and `.inbox.ack` (its own subjects;
//! the agency needs no JetStream rights), with explicit acknowledgement
//! (docs/wire-contract.md, "Receiving").
//!
//! [`AgencyClient::next_batch`] hands out [`Received`] deliveries and
//! acknowledges nothing: the caller stores each delivery, then calls
//! [`Received::ack`] (or [`Received::nak`] to have it again now). A delivery
//! not acknowledged within the ack wait (30 s by default) is handed out
//! again, so a system that crashes between storing and acking sees the same
//! envelope twice: de-duplicate on `envelope.id` (the gateway sends each
//! recipient at most one copy per id), e.g. by storing under the id and
//! treating "already stored" as success — which is what the file adapter
//! ([`crate::adapter`]) does. [`Received::delivery_count`] says how often it came.
//!
//! Every copy carries its number in this agency's inbox,
//! [`Received::recipient_seq`]: 1, 2, 3 … with no gap and no repeat. Feed
//! them to a [`Gaps`] to prove that nothing was missed.
//!
//! The inbox is durable: an agency that was offline reads what waited for
//! it (up to `streams.delivery_max_age_days`) the next time it asks, with no
//! catch-up step of its own. [`AgencyClient::inbox`] is the convenience that
//! acknowledges each delivery as soon as it is decoded.
//!
//! Each delivery taken is an `envelope.receive` span, the child of the
//! gateway's `gateway.deliver` span whose W3C context the delivery carries;
//! it ends when the [`Received`] is dropped. The receiving system can make
//! its own work part of the trace ([`Received::span`],
//! [`Received::trace_context`]).

use crate::client::AgencyClient;
use crate::error::InboxError;
use bytes::Bytes;
use liaison_core::hop::Hop;
use liaison_core::trace::{self, TraceContext};
use liaison_core::{ids, subjects};
use liaison_proto::v1::{Delivery, InboxAck, InboxAcked, InboxCopies, InboxCopy, InboxRead};
use prost::Message as _;
use std::time::Duration;

/// How much longer than the wait asked for a read may take to be answered.
const ANSWER_GRACE: Duration = Duration::from_secs(10);

/// One delivery taken from the inbox, not yet acknowledged.
pub struct Received {
    /// The copy this agency may see: the envelope with withheld fields
    /// removed, the labels withheld and the clauses that permitted it.
    pub delivery: Delivery,
    recipient_seq: u64,
    ack_id: String,
    delivery_count: u32,
    client: async_nats::Client,
    agency: liaison_core::AgencyId,
    hop: Hop,
}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the delivery itself: it carries personal data.
        f.debug_struct("Received")
            .field("envelope_id", &self.envelope_id())
            .field("recipient_seq", &self.recipient_seq)
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
        i64::from(self.delivery_count.max(1))
    }

    /// This copy's number in this agency's inbox: 1, 2, 3 … with no gap and
    /// no repeat (the gateway numbers each agency's copies, and JetStream
    /// refuses a copy that would fork or skip the inbox). Feed them to a
    /// [`Gaps`] to know that nothing was missed.
    pub fn recipient_seq(&self) -> u64 {
        self.recipient_seq
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

    /// Acknowledges it, waiting for the gateway to confirm, so it is never
    /// handed out again. Call this only once the delivery is stored.
    pub async fn ack(&self) -> Result<(), InboxError> {
        self.settle(false, Duration::ZERO).await
    }

    /// Hands it back to be handed out again now (it could not be stored).
    pub async fn nak(&self) -> Result<(), InboxError> {
        self.settle(true, Duration::ZERO).await
    }

    /// Hands it back to be handed out again after `delay`.
    pub async fn nak_after(&self, delay: Duration) -> Result<(), InboxError> {
        self.settle(true, delay).await
    }

    /// The delivery, giving up the means to acknowledge it.
    pub fn into_delivery(self) -> Delivery {
        self.delivery
    }

    async fn settle(&self, nak: bool, delay: Duration) -> Result<(), InboxError> {
        settle(
            &self.client,
            &self.agency,
            vec![self.ack_id.clone()],
            nak,
            delay,
        )
        .await
        .map_err(|reason| InboxError::Ack {
            envelope_id: self.envelope_id().to_owned(),
            reason,
        })
    }
}

/// Acknowledges (or, with `nak`, hands back after `delay`) the copies
/// `ack_ids` of `agency`'s inbox, in one request.
async fn settle(
    client: &async_nats::Client,
    agency: &liaison_core::AgencyId,
    ack_ids: Vec<String>,
    nak: bool,
    delay: Duration,
) -> Result<(), String> {
    let request = InboxAck {
        ack_ids,
        nak,
        delay_ms: u32::try_from(delay.as_millis()).unwrap_or(u32::MAX),
    };
    let reply = ask(
        client,
        subjects::inbox(agency, subjects::InboxOp::Ack),
        request.encode_to_vec().into(),
        ANSWER_GRACE,
    )
    .await?;
    let acked = InboxAcked::decode(reply.as_ref())
        .map_err(|e| format!("not a liaison.v1.InboxAcked: {e}"))?;
    if acked.code.is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {}", acked.code, acked.reason))
    }
}

/// One request to the gateway, waiting up to `timeout` for the answer.
async fn ask(
    client: &async_nats::Client,
    subject: String,
    payload: Bytes,
    timeout: Duration,
) -> Result<Bytes, String> {
    let request = async_nats::Request::new()
        .payload(payload)
        .timeout(Some(timeout));
    client
        .send_request(subject, request)
        .await
        .map(|m| m.payload)
        .map_err(|e| e.to_string())
}

impl AgencyClient {
    /// The `envelope.receive` span of a delivery: ids, kind, number and
    /// delivery count, nothing of its content.
    fn receive_span(&self, copy: &InboxCopy) -> Hop {
        let envelope = copy.delivery.as_ref().and_then(|d| d.envelope.as_ref());
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
            recipient_seq = copy.recipient_seq,
            delivered = copy.delivery_count,
        );
        let mut headers = async_nats::HeaderMap::new();
        for (name, value) in [
            ("traceparent", &copy.traceparent),
            ("tracestate", &copy.tracestate),
        ] {
            if !value.is_empty() {
                headers.insert(name, value.as_str());
            }
        }
        Hop::continuing(span, trace::extract(Some(&headers)))
    }

    /// Takes up to `max` (at most 256) deliveries, waiting up to `wait` (at
    /// most 30 s) for the first, and returns as soon as some are there.
    /// Nothing is acknowledged: call [`Received::ack`] on each once it is
    /// stored.
    pub async fn next_batch(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Received>, InboxError> {
        let request = InboxRead {
            max: u32::try_from(max.clamp(1, 256)).unwrap_or(256),
            wait_ms: u32::try_from(wait.min(Duration::from_secs(30)).as_millis()).unwrap_or(0),
        };
        let reply = ask(
            &self.client,
            subjects::inbox(&self.agency, subjects::InboxOp::Next),
            request.encode_to_vec().into(),
            wait + ANSWER_GRACE,
        )
        .await
        .map_err(InboxError::Fetch)?;
        let answer = InboxCopies::decode(reply.as_ref()).map_err(|e| InboxError::Undecodable {
            reason: format!("not a liaison.v1.InboxCopies: {e}"),
        })?;
        if !answer.code.is_empty() {
            return Err(InboxError::Refused {
                code: answer.code,
                reason: answer.reason,
            });
        }
        Ok(answer
            .copies
            .into_iter()
            .map(|copy| {
                let hop = self.receive_span(&copy);
                Received {
                    recipient_seq: copy.recipient_seq,
                    ack_id: copy.ack_id,
                    delivery_count: copy.delivery_count,
                    delivery: copy.delivery.unwrap_or_default(),
                    client: self.client.clone(),
                    agency: self.agency.clone(),
                    hop,
                }
            })
            .collect())
    }

    /// Acknowledges every delivery of `received` in one request (one write
    /// of the inbox's position, however many): what a system that stores a
    /// batch and then acknowledges it should use. Call it only once all are
    /// stored.
    pub async fn ack_all(&self, received: &[Received]) -> Result<(), InboxError> {
        let Some(first) = received.first() else {
            return Ok(());
        };
        let ack_ids = received.iter().map(|r| r.ack_id.clone()).collect();
        settle(&self.client, &self.agency, ack_ids, false, Duration::ZERO)
            .await
            .map_err(|reason| InboxError::Ack {
                envelope_id: first.envelope_id().to_owned(),
                reason: format!("{reason} (with {} others)", received.len() - 1),
            })
    }

    /// Takes up to `max` deliveries, waiting up to `wait` for the first, and
    /// acknowledges them together as soon as they are decoded: for a caller
    /// that has nothing to store first (a display). Systems that store
    /// deliveries use [`next_batch`](Self::next_batch) and acknowledge after
    /// storing.
    pub async fn inbox(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, InboxError> {
        let received = self.next_batch(max, wait).await?;
        self.ack_all(&received).await?;
        Ok(received.into_iter().map(Received::into_delivery).collect())
    }
}

/// What an agency has seen of its inbox's numbers ([`Received::recipient_seq`]),
/// and so what it has not: copies come in order, except that one not
/// acknowledged in time comes again later, so a number below the highest
/// seen may arrive late and is then no longer missing.
///
/// ```
/// use liaison_client::inbox::Gaps;
/// let mut gaps = Gaps::starting_after(0);
/// gaps.saw(1);
/// gaps.saw(3);
/// assert_eq!(gaps.missing(), vec![2..=2]);
/// gaps.saw(2);
/// assert!(gaps.missing().is_empty());
/// assert_eq!(gaps.through(), 3);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Gaps {
    /// Every number up to this one has been seen.
    through: u64,
    /// Numbers seen above `through + 1`.
    ahead: std::collections::BTreeSet<u64>,
}

impl Gaps {
    /// Tracking from `through + 1` (0 for a new inbox; else the highest
    /// number already stored, as the agency's own records say).
    pub fn starting_after(through: u64) -> Self {
        Self {
            through,
            ahead: std::collections::BTreeSet::new(),
        }
    }

    /// Records number `n` as seen (again is harmless).
    pub fn saw(&mut self, n: u64) {
        if n <= self.through {
            return;
        }
        self.ahead.insert(n);
        while self.ahead.remove(&(self.through + 1)) {
            self.through += 1;
        }
    }

    /// Every number up to this one has been seen.
    pub fn through(&self) -> u64 {
        self.through
    }

    /// The numbers below the highest seen that have not been seen, as ranges.
    pub fn missing(&self) -> Vec<std::ops::RangeInclusive<u64>> {
        let mut out = Vec::new();
        let mut next = self.through + 1;
        for &n in &self.ahead {
            if n > next {
                out.push(next..=n - 1);
            }
            next = n + 1;
        }
        out
    }
}
