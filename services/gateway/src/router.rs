//! Routing: consumes accepted envelopes from EVENTS and delivers one redacted
//! copy per recipient to DELIVERY, as decided at acceptance. Each copy is
//! de-duplicated on (envelope id, recipient), so a router that dies mid-way
//! and starts again delivers nothing twice; the event is acknowledged only
//! after every copy and its disclosure record are stored.

use crate::Shared;
use crate::records;
use crate::redact::redact;
use async_nats::HeaderMap;
use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::PullConsumer;
use liaison_kit::{AgencyId, consume, subjects};
use liaison_proto::v1::{DataLabel, Delivery, Envelope, EnvelopeAccepted};
use prost::Message as _;
use prost_reflect::DynamicMessage;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

/// Routes until `shutdown`; the message in hand is finished first.
pub async fn serve(
    shared: Arc<Shared>,
    consumer: PullConsumer,
    shutdown: CancellationToken,
) -> Result<(), String> {
    let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
    while let Some(message) =
        consume::next(&mut messages, &shutdown, subjects::ROUTER_CONSUMER).await?
    {
        let accepted = match EnvelopeAccepted::decode(message.payload.as_ref()) {
            Ok(a) => a,
            Err(e) => {
                // Only the gateway writes EVENTS: this is a bug, not input to retry.
                error!(error = %e, "Undecodable event in EVENTS, skipped");
                let _ = message.ack_with(AckKind::Term).await;
                continue;
            }
        };
        let outcome = deliver(&shared, &accepted).await;
        let ack = match outcome {
            Ok(()) => message.ack().await,
            Err(e) => {
                error!(error = %e, "Delivery failed; will retry");
                message
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                    .await
            }
        };
        if let Err(e) = ack {
            error!(error = %e, "Could not acknowledge event");
        }
    }
    Ok(())
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
    ) -> Result<(Envelope, BTreeSet<DataLabel>), String> {
        if withheld.is_empty() {
            return Ok((self.envelope.clone(), BTreeSet::new()));
        }
        let mut dynamic = match &self.dynamic {
            Some(d) => d.clone(),
            None => {
                let bytes = self.envelope.encode_to_vec();
                let d =
                    DynamicMessage::decode(liaison_proto::message("Envelope"), bytes.as_slice())
                        .map_err(|e| e.to_string())?;
                self.dynamic.insert(d).clone()
            }
        };
        let removed = redact(&mut dynamic, withheld);
        let copy = dynamic
            .transcode_to::<Envelope>()
            .map_err(|e| e.to_string())?;
        Ok((copy, removed))
    }
}

async fn deliver(shared: &Shared, accepted: &EnvelopeAccepted) -> Result<(), String> {
    let default = Envelope::default();
    let envelope = accepted.envelope.as_ref().unwrap_or(&default);
    let mut copies = Copies::new(envelope);
    for route in &accepted.routes {
        let recipient = AgencyId::parse(&route.recipient).map_err(|e| e.to_string())?;
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
        let mut headers = HeaderMap::new();
        headers.insert(
            "Nats-Msg-Id",
            format!("{}:{}", envelope.id, route.recipient).as_str(),
        );
        shared
            .js
            .publish_with_headers(
                subjects::delivery(&recipient, envelope.kind()),
                headers,
                delivery.encode_to_vec().into(),
            )
            .await
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        shared
            .recorder
            .publish(&records::disclosure(accepted, route, &removed))
            .await?;
        shared
            .metrics
            .deliveries
            .inc(&[recipient.as_str(), envelope.kind()]);
        if !removed.is_empty() {
            shared.metrics.redacted.inc(&[recipient.as_str()]);
        }
        info!(envelope_id = %envelope.id, recipient = %recipient, withheld = removed.len(), "Envelope delivered");
    }
    Ok(())
}
