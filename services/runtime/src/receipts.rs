//! Receipts: who sent each accepted envelope and who received a copy, kept in
//! the JetStream KV bucket [`BUCKET`]. The gateway's router writes one before
//! it delivers an envelope's copies, so any recipient that can answer an
//! envelope finds its receipt; the gateway reads it when a later envelope
//! names this one in `in_reply_to` (an answer, an acknowledgement, a
//! correction, an erasure confirmation), and policy decides on who sent and
//! who received the original. Envelope ids are the sender's own: an id
//! holds one receipt per sender that used it. Kept as long as the envelopes
//! themselves (no age limit): a recipient must be told of a correction or
//! an erasure for as long as it may hold the data.

use async_nats::jetstream::{self, kv};
use liaison_core::NatsContext as _;
use liaison_core::ids::{AgencyId, validate_envelope_id};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// KV bucket of receipts.
pub const BUCKET: &str = "RECEIPTS";
/// Largest receipt read (bounded before decoding).
const MAX_VALUE_BYTES: usize = 16 * 1024;

/// Who sent one envelope and who received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub sender: AgencyId,
    /// Its body kind (`referral`, `information_request`, `alert`, ...).
    pub kind: String,
    #[serde(default)]
    pub case_id: String,
    pub recipients: Vec<AgencyId>,
    /// Its classification (the `Classification` enum's number).
    pub classification: i32,
}

/// Why a receipt could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    #[error(transparent)]
    Id(#[from] liaison_core::IdError),
    #[error("receipts store")]
    Store(#[from] liaison_core::NatsError),
    #[error("receipt of envelope {envelope} cannot be encoded")]
    Encode {
        envelope: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("receipt of envelope {envelope}: {reason}")]
    Invalid { envelope: String, reason: String },
}

impl Receipt {
    /// The receipt an accepted envelope (or its fact) gives.
    pub fn of(
        accepted: &liaison_proto::v1::EnvelopeAccepted,
    ) -> Result<Self, liaison_core::IdError> {
        let default = liaison_proto::v1::Envelope::default();
        let envelope = accepted.envelope.as_ref().unwrap_or(&default);
        Ok(Self {
            sender: AgencyId::parse(&envelope.sender_agency)?,
            kind: envelope.kind().to_owned(),
            case_id: envelope.case_id.clone(),
            recipients: accepted
                .routes
                .iter()
                .map(|r| AgencyId::parse(&r.recipient))
                .collect::<Result<_, _>>()?,
            classification: envelope.classification,
        })
    }
}

/// The bucket's configuration: one value per envelope id, kept `max_age`
/// (zero: for ever, as provisioning keeps them).
pub fn bucket_config(replicas: usize, max_age: Duration) -> kv::Config {
    kv::Config {
        bucket: BUCKET.to_owned(),
        description: "Who sent and who received each accepted envelope".to_owned(),
        history: 1,
        max_age,
        num_replicas: replicas.max(1),
        max_value_size: MAX_VALUE_BYTES as i32,
        ..Default::default()
    }
}

/// The KV key of an envelope id: envelope ids may hold ':', keys may not.
fn key(envelope_id: &str) -> Result<String, ReceiptError> {
    validate_envelope_id(envelope_id)?;
    Ok(hex::encode(&Sha256::digest(envelope_id.as_bytes())[..20]))
}

/// The receipts store.
#[derive(Clone)]
pub struct Store(kv::Store);

impl Store {
    /// Binds to the (provisioned) bucket.
    pub async fn open(js: &jetstream::Context) -> Result<Self, ReceiptError> {
        js.get_key_value(BUCKET)
            .await
            .map(Self)
            .nats(format!("KV bucket {BUCKET}"))
            .map_err(ReceiptError::from)
    }

    /// The receipts of `envelope_id`: one per sender that used the id
    /// (envelope ids are the sender's; two agencies may choose the same).
    /// Empty if no such envelope was delivered.
    pub async fn get(&self, envelope_id: &str) -> Result<Vec<Receipt>, ReceiptError> {
        Ok(self
            .entry(envelope_id)
            .await?
            .map(|(receipts, _)| receipts)
            .unwrap_or_default())
    }

    async fn entry(&self, envelope_id: &str) -> Result<Option<(Vec<Receipt>, u64)>, ReceiptError> {
        let Some(entry) = self
            .0
            .entry(key(envelope_id)?)
            .await
            .nats(format!("get from KV bucket {BUCKET}"))?
            .filter(|e| e.operation == kv::Operation::Put)
        else {
            return Ok(None);
        };
        let invalid = |reason: String| ReceiptError::Invalid {
            envelope: envelope_id.to_owned(),
            reason,
        };
        if entry.value.len() > MAX_VALUE_BYTES {
            return Err(invalid(format!("value is {} bytes", entry.value.len())));
        }
        // One receipt per sender; a single object is the form written
        // before receipts were kept per sender.
        let receipts = serde_json::from_slice::<Vec<Receipt>>(&entry.value)
            .or_else(|_| serde_json::from_slice::<Receipt>(&entry.value).map(|r| vec![r]))
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Some((receipts, entry.revision)))
    }

    /// Stores `receipt`, the receipt of `envelope_id` from its sender (the
    /// gateway's router), beside other senders' of the same id; by
    /// compare-and-set, so two routers never lose each other's.
    /// One round trip for an id seen for the first time (the usual case);
    /// nothing written when the receipt is there already (a commit routed
    /// again).
    pub async fn put(&self, envelope_id: &str, receipt: &Receipt) -> Result<(), ReceiptError> {
        let key = key(envelope_id)?;
        let encode = |receipts: &[Receipt]| {
            serde_json::to_vec(receipts).map_err(|source| ReceiptError::Encode {
                envelope: envelope_id.to_owned(),
                source,
            })
        };
        let first = encode(std::slice::from_ref(receipt))?;
        if self.0.create(&key, first.into()).await.is_ok() {
            return Ok(());
        }
        for _ in 0..16 {
            let (mut receipts, revision) = self.entry(envelope_id).await?.unwrap_or_default();
            if receipts.contains(receipt) {
                return Ok(());
            }
            receipts.retain(|r| r.sender != receipt.sender);
            receipts.push(receipt.clone());
            let value = encode(&receipts)?;
            let written = if revision == 0 {
                self.0
                    .create(&key, value.into())
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            } else {
                self.0
                    .update(&key, value.into(), revision)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            };
            if written.is_ok() {
                return Ok(());
            }
        }
        Err(ReceiptError::Invalid {
            envelope: envelope_id.to_owned(),
            reason: "changed by others 16 times while being written".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_safe_and_distinct() {
        let a = key("urn:uuid:1").unwrap_or_default();
        let b = key("urn:uuid:2").unwrap_or_default();
        assert_eq!(a.len(), 40);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(key("bad id").is_err());
        assert!(key("").is_err());
    }
}
