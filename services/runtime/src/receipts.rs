//! Receipts: who sent each accepted envelope and who received a copy, kept in
//! the JetStream KV bucket [`BUCKET`]. The gateway's router writes one before
//! it delivers an envelope's copies, so any recipient that can answer an
//! envelope finds its receipt; the gateway reads it when a later envelope
//! names this one in `in_reply_to` (an answer, an acknowledgement, a
//! correction, an erasure confirmation), and policy decides on who sent and
//! who received the original. Kept as long as copies are (delivery max age).

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

/// The bucket's configuration: one value per envelope, kept `max_age`.
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

    /// The receipt of `envelope_id`; `None` if no such envelope was delivered.
    pub async fn get(&self, envelope_id: &str) -> Result<Option<Receipt>, ReceiptError> {
        let Some(value) = self
            .0
            .get(key(envelope_id)?)
            .await
            .nats(format!("get from KV bucket {BUCKET}"))?
        else {
            return Ok(None);
        };
        let invalid = |reason: String| ReceiptError::Invalid {
            envelope: envelope_id.to_owned(),
            reason,
        };
        if value.len() > MAX_VALUE_BYTES {
            return Err(invalid(format!("value is {} bytes", value.len())));
        }
        serde_json::from_slice(&value)
            .map(Some)
            .map_err(|e| invalid(e.to_string()))
    }

    /// Stores the receipt of `envelope_id` (the gateway's router).
    pub async fn put(&self, envelope_id: &str, receipt: &Receipt) -> Result<(), ReceiptError> {
        let value = serde_json::to_vec(receipt).map_err(|source| ReceiptError::Encode {
            envelope: envelope_id.to_owned(),
            source,
        })?;
        self.0
            .put(key(envelope_id)?, value.into())
            .await
            .map(|_| ())
            .nats(format!("put into KV bucket {BUCKET}"))
            .map_err(ReceiptError::from)
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
