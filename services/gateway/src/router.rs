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
use liaison_proto::v1::{
    CopyPack, DataLabel, Delivery, Envelope, EnvelopeAccepted, PackedCopy, Sealed,
};
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
    // Every copy, packed per inbox; then the decision records of every
    // envelope of the commit, in its order: all in packs whose ids the
    // commit fixes, so stored once however often the commit is routed.
    let routed: Option<Vec<Routed>> = routed.into_iter().collect();
    let stored = match routed {
        Some(routed) => {
            let (records, copies): (Vec<_>, Vec<_>) =
                routed.into_iter().map(|r| (r.records, r.copies)).unzip();
            let copies: Vec<Prepared> = copies.into_iter().flatten().collect();
            let records: Vec<Traced> = records.into_iter().flatten().collect();
            match store_copies(shared, &commit.id, &copies).await {
                Ok(()) => match shared
                    .recorder
                    .publish_packs(&format!("records:{}", commit.id), &records)
                    .await
                {
                    Ok(()) => true,
                    Err(e) => {
                        error!(error = %e, "Decision records not stored; the commit will be routed again");
                        false
                    }
                },
                Err(e) => {
                    error!(error = %liaison_core::error::chain(&e), "Copies not stored; the commit will be routed again");
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

/// Makes one committed envelope's copies and decision records (none if it
/// was erased before it could be routed); `None` if it must be routed
/// again (its receipt could not be stored, or its keys not read).
async fn route_one(
    shared: &Shared,
    entry: &liaison_proto::v1::CommittedEnvelope,
) -> Option<Routed> {
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
                return Some(Routed {
                    records: vec![],
                    copies: vec![],
                });
            }
        },
        Err(e @ SealError::Erased(_)) => {
            // Erased (its subject, or its retention ended) before its copies
            // went out: there is nothing left to deliver.
            warn!(error = %e, "Event erased before delivery, skipped");
            return Some(Routed {
                records: vec![],
                copies: vec![],
            });
        }
        Err(e @ SealError::Corrupt(_)) => {
            error!(error = %e, "Unopenable event in EVENTS, skipped");
            return Some(Routed {
                records: vec![],
                copies: vec![],
            });
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
        Ok(routed) => Some(routed),
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

/// One recipient's copy of one envelope, made and sealed, to be stored in a
/// pack with the commit's other copies for the same inbox.
struct Prepared {
    recipient: AgencyId,
    copy: PackedCopy,
    redacted: bool,
    kind: &'static str,
    envelope_id: String,
    sender: String,
    accepted_at: Option<prost_types::Timestamp>,
}

/// What routing one envelope made: its decision records (the collection,
/// in the route's span, then a disclosure per copy, each in its copy's)
/// and its copies.
struct Routed {
    records: Vec<Traced>,
    copies: Vec<Prepared>,
}

/// Stores the envelope's receipt, then makes and seals every recipient's
/// copy (stored by the caller, packed with the commit's others) and its
/// decision records.
async fn deliver(
    shared: &Shared,
    sealed: &Sealed,
    accepted: &EnvelopeAccepted,
    hop: &Hop,
) -> Result<Routed, RouteError> {
    let default = Envelope::default();
    let envelope = accepted.envelope.as_ref().unwrap_or(&default);
    // The receipt first: a recipient that answers this envelope (or a
    // sender that corrects it) is then sure to find who received it.
    shared
        .receipts
        .put(&envelope.id, &Receipt::of(accepted)?)
        .await?;
    let mut records: Vec<Traced> = Vec::with_capacity(1 + accepted.routes.len());
    records.push((
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
    let scoped_id = liaison_core::ids::scoped_id(&envelope.sender_agency, &envelope.id);
    let mut copies = Copies::new(envelope);
    let mut prepared = Vec::with_capacity(accepted.routes.len());
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
        let span = hop.child(info_span!(
            parent: hop.span(),
            "gateway.deliver",
            otel.kind = "producer",
            recipient = route.recipient.as_str(),
            kind = envelope.kind(),
            envelope_id = envelope.id.as_str(),
            withheld = removed.len(),
        ));
        let context = span.context();
        // Sealed with the envelope's own data keys, bound to this inbox
        // and this envelope.
        let sealed_copy = shared
            .keys
            .seal_like(
                sealed,
                &subjects::copy_sealed_to(&recipient, &scoped_id),
                &delivery.encode_to_vec(),
            )
            .await?;
        records.push((
            records::disclosure(accepted, route, &removed),
            context.clone(),
        ));
        let (traceparent, tracestate) = liaison_core::trace::fields(context.as_ref());
        prepared.push(Prepared {
            copy: PackedCopy {
                scoped_id: scoped_id.clone(),
                copy: sealed_copy.to_vec(),
                traceparent,
                tracestate,
            },
            recipient,
            redacted: !removed.is_empty(),
            kind: envelope.kind(),
            envelope_id: envelope.id.clone(),
            sender: envelope.sender_agency.clone(),
            accepted_at: accepted.accepted_at,
        });
    }
    Ok(Routed {
        records,
        copies: prepared,
    })
}

/// Most copies in one pack, and about the most bytes (a copy larger than
/// that goes alone): well under the server's 1 MiB `max_payload`. By count
/// and size only, so that a commit routed again is packed the same way.
const PACK_COPIES: usize = 128;
const PACK_BYTES: usize = 512 * 1024;

/// The copies for one inbox, in packs of at most [`PACK_COPIES`] and about
/// [`PACK_BYTES`], in order.
fn packs<'a>(copies: &[&'a Prepared]) -> Vec<Vec<&'a Prepared>> {
    let mut packs: Vec<Vec<&Prepared>> = Vec::new();
    let mut bytes = 0;
    for copy in copies {
        let len = copy.copy.copy.len();
        match packs.last_mut() {
            Some(pack) if pack.len() < PACK_COPIES && bytes + len <= PACK_BYTES => {
                bytes += len;
                pack.push(copy);
            }
            _ => {
                bytes = len;
                packs.push(vec![copy]);
            }
        }
    }
    packs
}

/// Stores the copies of a commit: for each inbox, its copies in packs (in
/// the commit's order), numbered in the inbox; different inboxes side by
/// side. Each pack's `Nats-Msg-Id` is fixed by the commit, the inbox and
/// its place, so a commit routed again stores nothing twice.
async fn store_copies(
    shared: &Shared,
    commit_id: &str,
    copies: &[Prepared],
) -> Result<(), RouteError> {
    let mut by_inbox: std::collections::BTreeMap<&AgencyId, Vec<&Prepared>> =
        std::collections::BTreeMap::new();
    for copy in copies {
        by_inbox.entry(&copy.recipient).or_default().push(copy);
    }
    let stored = by_inbox.into_iter().map(|(agency, copies)| async move {
        for (n, pack) in packs(&copies).into_iter().enumerate() {
            let mut headers = HeaderMap::new();
            headers.insert(
                "Nats-Msg-Id",
                format!("copies:{commit_id}:{agency}:{n}").as_str(),
            );
            let payload = CopyPack {
                copies: pack.iter().map(|p| p.copy.clone()).collect(),
            }
            .encode_to_vec();
            shared
                .sequencer
                .publish(
                    agency,
                    subjects::copies(agency),
                    headers,
                    payload.into(),
                    pack.len() as u64,
                )
                .await?;
        }
        shared.inboxes.wake(agency);
        Ok::<(), RouteError>(())
    });
    for result in join_all(stored).await {
        result?;
    }
    for copy in copies {
        delivered(shared, copy);
    }
    Ok(())
}

/// Counts and logs one copy stored.
fn delivered(shared: &Shared, copy: &Prepared) {
    let sender = crate::metrics::sender_label(shared, &copy.sender);
    let recipient = copy.recipient.as_str();
    shared.metrics.deliveries.inc(&[recipient, copy.kind]);
    shared.metrics.flows.inc(&[sender, recipient]);
    if let Some(seconds) = crate::metrics::seconds_since(copy.accepted_at.as_ref()) {
        shared.metrics.e2e_seconds.observe(seconds);
    }
    if copy.redacted {
        shared.metrics.redacted.inc(&[recipient]);
    }
    info!(envelope_id = %copy.envelope_id, recipient = %recipient, redacted = copy.redacted, "Envelope delivered");
}
