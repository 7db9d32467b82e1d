//! Routing: consumes EVENTS' commits and delivers one redacted copy of each
//! of their envelopes per recipient to DELIVERY, as decided at acceptance.
//! Each copy is de-duplicated on (envelope id, recipient), so a router that
//! dies mid-way and starts again delivers nothing twice; a commit is
//! acknowledged only after every copy and disclosure record of every one of
//! its envelopes is stored.
//!
//! Each event is routed in a `gateway.route` span, the child of the ingress
//! span whose context EVENTS carries; each copy is made in a `gateway.deliver`
//! span under it, whose context the copy carries to its recipient.

use crate::Shared;
use crate::records;
use crate::redact::redact;
use async_nats::HeaderMap;
use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::PullConsumer;
use futures_util::future::join_all;
use liaison_core::NatsContext as _;
use liaison_core::hop::Hop;
use liaison_core::trace::TraceContext;
use liaison_core::{AgencyId, subjects};
use liaison_proto::v1::{DataLabel, Delivery, Envelope, EnvelopeAccepted, Sealed};
use liaison_runtime::consume;
use liaison_runtime::receipts::Receipt;
use liaison_runtime::seal::SealError;
use prost::Message as _;
use prost_reflect::DynamicMessage;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument as _, error, info, info_span, warn};

/// Routes until `shutdown`; the events in hand are finished first. Events
/// are routed concurrently (up to `gateway.concurrency` at once), each
/// acknowledged once all its copies and records are stored: copies of
/// different envelopes may reach a recipient in another order than they were
/// accepted (each carries its `accepted_at`).
pub async fn serve(
    shared: Arc<Shared>,
    consumer: PullConsumer,
    shutdown: CancellationToken,
) -> Result<(), RouteError> {
    let tracker = TaskTracker::new();
    let permits = Arc::new(Semaphore::new(shared.config.gateway.concurrency.max(1)));
    let result = async {
        let mut messages = consumer.messages().await.nats("the router's messages")?;
        while let Some(message) =
            consume::next(&mut messages, &shutdown, subjects::ROUTER_CONSUMER).await?
        {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let shared = shared.clone();
            tracker.spawn(async move {
                route(&shared, message).await;
                drop(permit);
            });
        }
        Ok(())
    }
    .await;
    tracker.close();
    tracker.wait().await;
    result
}

/// Why an event's copies could not be delivered (the event is asked for
/// again), or the router stopped.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error(transparent)]
    Nats(#[from] liaison_core::NatsError),
    #[error(transparent)]
    Consumer(#[from] liaison_runtime::consume::ConsumerEnded),
    #[error("an agency id in the event")]
    Id(#[from] liaison_core::IdError),
    #[error(transparent)]
    Receipt(#[from] liaison_runtime::receipts::ReceiptError),
    #[error("a recipient's copy cannot be made")]
    Redact(#[source] prost::DecodeError),
    #[error("a recipient's copy cannot be sealed")]
    Seal(#[from] SealError),
    #[error("a copy for {agency} could not be stored: {reason}")]
    Inbox { agency: AgencyId, reason: String },
}

/// Delivers the copies of every envelope of one commit (side by side) and
/// acknowledges it, or asks for it again if any could not be delivered:
/// what was delivered then is de-duplicated when it is routed again.
async fn route(shared: &Shared, message: async_nats::jetstream::Message) {
    let commit = match liaison_proto::v1::Commit::decode(message.payload.as_ref()) {
        Ok(commit) => commit,
        Err(e) => {
            // Only the gateway writes EVENTS: this is a bug, not input to retry.
            error!(error = %e, "Undecodable commit in EVENTS, skipped");
            let _ = message.ack_with(AckKind::Term).await;
            return;
        }
    };
    let routed = join_all(
        commit
            .envelopes
            .iter()
            .map(|entry| route_one(shared, entry)),
    )
    .await;
    // The decision records of every envelope of the commit, in its order,
    // in packs whose ids the commit fixes: stored once, however often the
    // commit is routed.
    let records: Option<Vec<_>> = routed.into_iter().collect();
    let stored = match records {
        Some(records) => {
            let records: Vec<_> = records.into_iter().flatten().collect();
            match shared
                .recorder
                .publish_packs(&format!("records:{}", commit.id), &records)
                .await
            {
                Ok(()) => true,
                Err(e) => {
                    error!(error = %e, "Decision records not stored; the commit will be routed again");
                    false
                }
            }
        }
        None => false,
    };
    let ack = if stored {
        message.ack().await
    } else {
        message
            .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
            .await
    };
    if let Err(e) = ack {
        error!(error = %e, "Could not acknowledge commit");
    }
}

/// A decision record, with the trace context of the span it was made in.
type Traced = (liaison_proto::v1::AuditRecord, Option<TraceContext>);

/// Delivers one committed envelope's copies and returns its decision
/// records (none if it was erased before it could be routed); `None` if it
/// must be routed again (its copies could not all be stored, or its keys
/// not read).
async fn route_one(
    shared: &Shared,
    entry: &liaison_proto::v1::CommittedEnvelope,
) -> Option<Vec<Traced>> {
    let (sealed, accepted) = match shared
        .keys
        .open(&subjects::committed(&entry.scoped_id), &entry.event)
        .await
    {
        Ok((sealed, plain)) => match EnvelopeAccepted::decode(plain.as_slice()) {
            Ok(a) => (sealed, a),
            Err(e) => {
                // Only the gateway writes EVENTS: this is a bug, not input to retry.
                error!(error = %e, "Undecodable event in EVENTS, skipped");
                return Some(vec![]);
            }
        },
        Err(e @ SealError::Erased(_)) => {
            // Erased (its subject, or its retention ended) before its copies
            // went out: there is nothing left to deliver.
            warn!(error = %e, "Event erased before delivery, skipped");
            return Some(vec![]);
        }
        Err(e @ SealError::Corrupt(_)) => {
            error!(error = %e, "Unopenable event in EVENTS, skipped");
            return Some(vec![]);
        }
        Err(e) => {
            // The key store or the key-encryption key: asked for again.
            error!(error = %e, "Event not opened; will retry");
            return None;
        }
    };
    let envelope = accepted.envelope.as_ref();
    let context = liaison_runtime::fold::committed_trace(entry)
        .or_else(|| envelope.and_then(|e| TraceContext::from_field(&e.traceparent)));
    let hop = Hop::continuing(
        info_span!(
            "gateway.route",
            otel.kind = "consumer",
            kind = envelope.map(Envelope::kind).unwrap_or_default(),
            envelope_id = envelope.map(|e| e.id.as_str()).unwrap_or_default(),
            recipients = accepted.routes.len(),
        ),
        context,
    );
    let span = hop.span().clone();
    match deliver(shared, &sealed, &accepted, &hop)
        .instrument(span)
        .await
    {
        Ok(records) => Some(records),
        Err(e) => {
            error!(error = %liaison_core::error::chain(&e), "Delivery failed; will retry");
            None
        }
    }
}

/// Makes each recipient's copy of one envelope. The envelope is decoded into
/// a reflective message at most once, however many recipients need fields
/// removed.
struct Copies<'a> {
    envelope: &'a Envelope,
    dynamic: Option<DynamicMessage>,
}

impl<'a> Copies<'a> {
    fn new(envelope: &'a Envelope) -> Self {
        Self {
            envelope,
            dynamic: None,
        }
    }

    /// The copy for a recipient who may not see `withheld`, and the labels
    /// whose fields were actually removed.
    fn for_recipient(
        &mut self,
        withheld: &BTreeSet<DataLabel>,
    ) -> Result<(Envelope, BTreeSet<DataLabel>), RouteError> {
        if withheld.is_empty() {
            return Ok((self.envelope.clone(), BTreeSet::new()));
        }
        let mut dynamic = match &self.dynamic {
            Some(d) => d.clone(),
            None => {
                let bytes = self.envelope.encode_to_vec();
                let d =
                    DynamicMessage::decode(liaison_proto::message("Envelope"), bytes.as_slice())
                        .map_err(RouteError::Redact)?;
                self.dynamic.insert(d).clone()
            }
        };
        let removed = redact(&mut dynamic, withheld);
        let copy = dynamic
            .transcode_to::<Envelope>()
            .map_err(RouteError::Redact)?;
        Ok((copy, removed))
    }
}

/// Stores the envelope's receipt, publishes every recipient's copy (their
/// acknowledgements awaited together), and returns the collection record
/// (in the route's span) and the disclosure records (each in its copy's).
async fn deliver(
    shared: &Shared,
    sealed: &Sealed,
    accepted: &EnvelopeAccepted,
    hop: &Hop,
) -> Result<Vec<Traced>, RouteError> {
    let default = Envelope::default();
    let envelope = accepted.envelope.as_ref().unwrap_or(&default);
    // The receipt first: a recipient that answers this envelope (or a
    // sender that corrects it) is then sure to find who received it.
    let receipt = Receipt {
        sender: AgencyId::parse(&envelope.sender_agency)?,
        kind: envelope.kind().to_owned(),
        case_id: envelope.case_id.clone(),
        recipients: accepted
            .routes
            .iter()
            .map(|r| AgencyId::parse(&r.recipient))
            .collect::<Result<_, _>>()?,
        classification: envelope.classification,
    };
    shared.receipts.put(&envelope.id, &receipt).await?;
    // The collection record, then a disclosure record per copy: published
    // with the rest of the commit's once every copy is stored.
    let mut recorded: Vec<Traced> = Vec::with_capacity(1 + accepted.routes.len());
    recorded.push((
        liaison_proto::v1::AuditRecord {
            kept_until: sealed
                .keys
                .iter()
                .find_map(|k| liaison_runtime::seal::until_of(&k.name))
                .unwrap_or_default(),
            ..records::collection(accepted)
        },
        hop.context(),
    ));
    let mut copies = Copies::new(envelope);
    let mut stored = Vec::with_capacity(accepted.routes.len());
    let mut disclosures = Vec::with_capacity(accepted.routes.len());
    let mut delivered = Vec::with_capacity(accepted.routes.len());
    let mut hops = Vec::with_capacity(accepted.routes.len());
    for route in &accepted.routes {
        let recipient = AgencyId::parse(&route.recipient)?;
        let withheld: BTreeSet<DataLabel> = route
            .withheld_labels
            .iter()
            .filter_map(|l| DataLabel::try_from(*l).ok())
            .collect();
        let (copy, removed) = copies.for_recipient(&withheld)?;
        let removed: Vec<i32> = removed.into_iter().map(|l| l as i32).collect();
        let delivery = Delivery {
            envelope: Some(copy),
            recipient: route.recipient.clone(),
            withheld_labels: removed.clone(),
            policy_ids: route.policy_ids.clone(),
            accepted_at: accepted.accepted_at,
        };
        let copy = hop.child(info_span!(
            parent: hop.span(),
            "gateway.deliver",
            otel.kind = "producer",
            recipient = route.recipient.as_str(),
            kind = envelope.kind(),
            envelope_id = envelope.id.as_str(),
            withheld = removed.len(),
        ));
        let mut headers = HeaderMap::new();
        headers.insert(
            "Nats-Msg-Id",
            format!(
                "{}:{}",
                liaison_core::ids::scoped_id(&envelope.sender_agency, &envelope.id),
                route.recipient
            )
            .as_str(),
        );
        copy.inject(&mut headers);
        let span = copy.span().clone();
        hops.push(copy);
        let to = recipient.clone();
        let subject = subjects::delivery(&recipient, envelope.kind());
        // Sealed with the envelope's own data keys, bound to this inbox.
        let payload = shared
            .keys
            .seal_like(sealed, &subject, &delivery.encode_to_vec())
            .await?;
        stored.push(
            async move {
                shared
                    .sequencer
                    .publish(&to, subject, headers, payload)
                    .await?;
                shared.inboxes.wake(&to);
                Ok::<(), RouteError>(())
            }
            .instrument(span),
        );
        disclosures.push(records::disclosure(accepted, route, &removed));
        delivered.push((recipient, !removed.is_empty()));
    }
    // Each copy numbered in its recipient's inbox (gathered with other
    // envelopes' copies for the same recipient); different recipients' side
    // by side.
    for result in join_all(stored).await {
        result?;
    }
    recorded.extend(
        disclosures
            .into_iter()
            .zip(&hops)
            .map(|(record, copy)| (record, copy.context())),
    );
    let sender = crate::metrics::sender_label(shared, &envelope.sender_agency);
    let e2e = crate::metrics::seconds_since(accepted.accepted_at.as_ref());
    for (recipient, redacted) in delivered {
        shared
            .metrics
            .deliveries
            .inc(&[recipient.as_str(), envelope.kind()]);
        shared.metrics.flows.inc(&[sender, recipient.as_str()]);
        if let Some(seconds) = e2e {
            shared.metrics.e2e_seconds.observe(seconds);
        }
        if redacted {
            shared.metrics.redacted.inc(&[recipient.as_str()]);
        }
        info!(envelope_id = %envelope.id, recipient = %recipient, redacted, "Envelope delivered");
    }
    Ok(recorded)
}
