//! The alerts in the service's KV bucket (`ALERTS`), one JSON value per
//! alert under `alert.<hash of its id>` (envelope ids may hold ':', keys may
//! not). The bucket also holds the fold cursor and the outbox
//! (`liaison_runtime::fold`); everything in it can be rebuilt from EVENTS.
//! Read by the service at start and by `liaison alerts` (the operator).

use crate::alert::Alert;
use async_nats::jetstream::kv;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Key prefix of the alerts.
const PREFIX: &str = "alert.";
/// Largest alert value read (the bucket's own limit is 1 MiB).
const MAX_VALUE_BYTES: usize = 1024 * 1024;

/// Why the alerts could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("alerts in KV bucket ALERTS: {0}")]
pub struct StoreError(pub String);

/// The KV key of an alert.
pub fn key(alert_id: &str) -> String {
    format!(
        "{PREFIX}{}",
        hex::encode(&Sha256::digest(alert_id.as_bytes())[..20])
    )
}

/// Every alert in the bucket, by id. An entry that does not decode is an
/// error naming its key (the bucket is the service's own: a bug or damage,
/// which an empty bucket, rebuilt from EVENTS, repairs).
pub async fn load(store: &kv::Store) -> Result<BTreeMap<String, Alert>, StoreError> {
    let fail = |e: String| StoreError(e);
    let mut keys = store.keys().await.map_err(|e| fail(e.to_string()))?;
    let mut names = vec![];
    while let Some(key) = keys.next().await {
        let key = key.map_err(|e| fail(e.to_string()))?;
        if key.starts_with(PREFIX) {
            names.push(key);
        }
    }
    let mut alerts = BTreeMap::new();
    for name in names {
        let Some(value) = store.get(&name).await.map_err(|e| fail(e.to_string()))? else {
            continue;
        };
        if value.len() > MAX_VALUE_BYTES {
            return Err(fail(format!("{name}: value is {} bytes", value.len())));
        }
        let alert: Alert =
            serde_json::from_slice(&value).map_err(|e| fail(format!("{name}: {e}")))?;
        alerts.insert(alert.id.clone(), alert);
    }
    Ok(alerts)
}

/// Stores one alert.
pub async fn put(store: &kv::Store, alert: &Alert) -> Result<(), StoreError> {
    let value = serde_json::to_vec(alert).map_err(|e| StoreError(e.to_string()))?;
    store
        .put(key(&alert.id), value.into())
        .await
        .map(|_| ())
        .map_err(|e| StoreError(format!("{}: {e}", key(&alert.id))))
}

/// Forgets one alert.
pub async fn delete(store: &kv::Store, alert_id: &str) -> Result<(), StoreError> {
    store
        .delete(key(alert_id))
        .await
        .map_err(|e| StoreError(format!("{}: {e}", key(alert_id))))
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_safe_kv_keys_distinct_per_alert() {
        let a = super::key("urn:uuid:1");
        assert!(a.starts_with("alert."));
        assert_eq!(a.len(), "alert.".len() + 40);
        assert_ne!(a, super::key("urn:uuid:2"));
    }
}
