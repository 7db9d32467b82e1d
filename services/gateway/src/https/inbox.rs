//! An agency's inbox over HTTPS: the gateway pulls from the agency's own
//! durable DELIVERY consumer (the one the agency reads over NATS) without
//! acknowledging, and hands out each delivery with an opaque ack id. An ack id
//! is the JetStream acknowledgement subject, base64url-encoded; on ack it is
//! decoded and accepted only if it is an acknowledgement subject of *that*
//! agency's consumer, so one agency can never acknowledge another's copies.
//! What is not acknowledged within the consumer's `ack_wait` is delivered again.
//!
//! It does not authenticate: the routes do, before calling it.

use super::problem::Problem;
use crate::Shared;
use async_nats::jetstream::consumer::PullConsumer;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use futures_util::StreamExt;
use liaison_core::{AgencyId, subjects};
use liaison_proto::v1::Delivery;
use prost::Message as _;
use std::time::Duration;
use tracing::error;

/// Most deliveries handed out by one read.
pub const MAX_BATCH: usize = 256;
/// Most ack ids in one acknowledgement.
pub const MAX_ACKS: usize = 1000;
/// Longest a read waits for the first delivery.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// Longest the gateway waits for JetStream to confirm one acknowledgement.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// The numeric tokens after the consumer in an acknowledgement subject.
const ACK_NUMBERS: usize = 5;

/// One delivery handed to the agency, not yet acknowledged.
#[derive(Debug)]
pub struct Pulled {
    pub ack_id: String,
    /// `liaison.v1.Delivery` in the protobuf JSON mapping.
    pub delivery: serde_json::Value,
}

/// Takes up to `max` deliveries from `agency`'s inbox, waiting up to `wait`
/// for the first, and leaves them unacknowledged.
pub async fn pull(
    shared: &Shared,
    agency: &AgencyId,
    max: usize,
    wait: Duration,
) -> Result<Vec<Pulled>, Problem> {
    let unavailable = |e: String| Problem::Unavailable(e);
    let consumer: PullConsumer = shared
        .js
        .get_consumer_from_stream(
            subjects::delivery_consumer(agency),
            subjects::DELIVERY_STREAM,
        )
        .await
        .map_err(|e| unavailable(format!("the agency's delivery consumer: {e}")))?;
    let mut fetch = consumer.fetch().max_messages(max.clamp(1, MAX_BATCH));
    if !wait.is_zero() {
        fetch = fetch.expires(wait.min(MAX_WAIT));
    }
    let mut batch = fetch
        .messages()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let mut out = Vec::new();
    while let Some(message) = batch.next().await {
        let message = message.map_err(|e| unavailable(e.to_string()))?;
        let Some(reply) = message.reply.as_ref() else {
            continue;
        };
        match Delivery::decode(message.payload.as_ref()) {
            Ok(delivery) => out.push(Pulled {
                ack_id: URL_SAFE_NO_PAD.encode(reply.as_str()),
                delivery: liaison_proto::json::to_json("Delivery", &delivery),
            }),
            // Only the gateway writes DELIVERY: a bug, not the agency's doing.
            Err(e) => error!(agency = %agency, error = %e, "Undecodable delivery skipped"),
        }
    }
    Ok(out)
}

/// The acknowledgement subject an ack id stands for, if it is one of
/// `agency`'s: `$JS.ACK.DELIVERY.deliver-<agency>.` and five numbers.
pub fn ack_subject(agency: &AgencyId, ack_id: &str) -> Result<String, Problem> {
    let not_ours = || {
        Problem::InvalidAckId(format!(
            "{:?} is not an ack id of {agency}'s inbox",
            ack_id.chars().take(32).collect::<String>()
        ))
    };
    let subject = URL_SAFE_NO_PAD
        .decode(ack_id)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(not_ours)?;
    let numbers = subject
        .strip_prefix(&subjects::delivery_ack_prefix(agency))
        .ok_or_else(not_ours)?;
    let tokens: Vec<&str> = numbers.split('.').collect();
    let numeric =
        |t: &&str| !t.is_empty() && t.len() <= 20 && t.bytes().all(|b| b.is_ascii_digit());
    if tokens.len() != ACK_NUMBERS || !tokens.iter().all(numeric) {
        return Err(not_ours());
    }
    Ok(subject)
}

/// Acknowledges each subject (checked by [`ack_subject`]) and waits for
/// JetStream to confirm it; returns how many were confirmed. Acknowledging
/// again what is already acknowledged is harmless.
pub async fn ack(shared: &Shared, subjects: Vec<String>) -> Result<usize, Problem> {
    let total = subjects.len();
    for (done, subject) in subjects.into_iter().enumerate() {
        let confirmed = tokio::time::timeout(
            ACK_TIMEOUT,
            shared.client.request(subject, Bytes::from_static(b"+ACK")),
        )
        .await;
        match confirmed {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Err(Problem::Unavailable(format!(
                    "acknowledged {done} of {total}, then: {e}"
                )));
            }
            Err(_) => {
                return Err(Problem::Unavailable(format!(
                    "acknowledged {done} of {total}, then JetStream did not confirm in time"
                )));
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(agency: &str) -> AgencyId {
        AgencyId::parse(agency).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn ack_ids_are_accepted_only_from_the_agency_they_were_given_to() {
        let subject = "$JS.ACK.DELIVERY.deliver-police.1.42.7.1763900000000000000.3";
        let ack_id = URL_SAFE_NO_PAD.encode(subject);
        assert_eq!(ack_subject(&id("police"), &ack_id), Ok(subject.to_owned()));
        for (agency, forged) in [
            ("council", subject.to_owned()),
            ("police-2", subject.to_owned()),
            ("police", "$JS.ACK.DELIVERY.deliver-police.1.42.7.1".into()),
            ("police", format!("{subject}.9")),
            (
                "police",
                "$JS.ACK.DELIVERY.deliver-police.1.42.7.x.3".into(),
            ),
            ("police", "$JS.ACK.DELIVERY.deliver-police.>".into()),
            ("police", "$JS.API.STREAM.DELETE.DELIVERY".into()),
            ("police", "$JS.ACK.EVENTS.gateway-router.1.42.7.1.3".into()),
        ] {
            let ack_id = URL_SAFE_NO_PAD.encode(&forged);
            let refused = ack_subject(&id(agency), &ack_id);
            assert!(
                matches!(refused, Err(Problem::InvalidAckId(_))),
                "{agency} {forged}: {refused:?}"
            );
        }
        for garbage in ["", "!!!", "%2e%2e", "\u{1F600}", &"A".repeat(10_000)] {
            assert!(ack_subject(&id("police"), garbage).is_err(), "{garbage:?}");
        }
    }
}
