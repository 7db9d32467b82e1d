//! The index kept in the service's KV bucket (`LINKAGE`), one key per token
//! and per case, beside liaison-runtime's cursor and outbox:
//!
//! | key | value |
//! |---|---|
//! | `subject.<40 hex: SHA-256 of the token>` | JSON: the token, its cases, its referrals in the window, the last event applied |
//! | `case.<case id>` | JSON: owner, live or closed, review date, tokens, the last event applied |
//! | `meta.decided` | the last EVENTS sequence whose matches are all in the outbox |
//! | `meta.cursor`, `outbox.*` | liaison-runtime's [`Cursor`](liaison_runtime::fold::Cursor) and [`Outbox`](liaison_runtime::fold::Outbox) |
//!
//! Storing is incremental: only what changed since the last store is
//! written. It goes in this order — `meta.decided`, the changed entries, then
//! the cursor — so a crash part-way leaves entries at most at `decided` and
//! the cursor behind them. On restart EVENTS are replayed from the cursor;
//! an entry that already holds an event skips it, and events up to `decided`
//! are applied without deciding again (their matches were decided before
//! and are in the outbox, or were raised and came back). An empty bucket
//! rebuilds the index from EVENTS' first event.

use crate::index::{Case, Index, Subject};
use async_nats::jetstream::kv;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const SUBJECT_PREFIX: &str = "subject.";
const CASE_PREFIX: &str = "case.";
const DECIDED_KEY: &str = "meta.decided";
/// Writes in flight at once when storing.
const PARALLEL_WRITES: usize = 64;

/// Why the index could not be loaded or stored.
#[derive(Debug, thiserror::Error)]
#[error("linkage index in KV bucket LINKAGE: {0}")]
pub struct StoreError(pub String);

/// A token entry as stored (the key holds only a hash of the token).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredSubject {
    token: String,
    subject: Subject,
}

fn subject_key(token: &str) -> String {
    format!(
        "{SUBJECT_PREFIX}{}",
        hex::encode(&Sha256::digest(token.as_bytes())[..20])
    )
}

/// The index's keys in the service's bucket.
pub struct IndexStore {
    kv: kv::Store,
}

/// What was loaded: the index and the last sequence already decided.
pub struct Loaded {
    pub index: Index,
    pub decided: u64,
}

impl IndexStore {
    pub fn new(kv: kv::Store) -> Self {
        Self { kv }
    }

    /// Reads every stored entry into a new index.
    pub async fn load(&self, settings: crate::index::Settings) -> Result<Loaded, StoreError> {
        let fail = |e: String| StoreError(e);
        let mut index = Index::new(settings);
        let mut decided = 0;
        let status = self.kv.status().await.map_err(|e| fail(e.to_string()))?;
        if status.info.state.messages == 0 {
            return Ok(Loaded { index, decided });
        }
        let mut entries = self
            .kv
            .watch_with_history(">")
            .await
            .map_err(|e| fail(e.to_string()))?;
        while let Some(entry) = entries.next().await {
            let entry = entry.map_err(|e| fail(e.to_string()))?;
            let last = entry.delta == 0;
            if entry.operation == kv::Operation::Put {
                let bad = |e: serde_json::Error| {
                    fail(format!(
                        "entry {} does not decode ({e}): stop the service, purge the bucket and start it again to rebuild the index from EVENTS",
                        entry.key
                    ))
                };
                if entry.key.starts_with(SUBJECT_PREFIX) {
                    let stored: StoredSubject =
                        serde_json::from_slice(&entry.value).map_err(bad)?;
                    index.restore_subject(stored.token, stored.subject);
                } else if let Some(case_id) = entry.key.strip_prefix(CASE_PREFIX) {
                    let case: Case = serde_json::from_slice(&entry.value).map_err(bad)?;
                    index.restore_case(case_id.to_owned(), case);
                } else if entry.key == DECIDED_KEY {
                    decided = std::str::from_utf8(&entry.value)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| fail(format!("{DECIDED_KEY} is not a number")))?;
                }
            }
            if last {
                break;
            }
        }
        Ok(Loaded { index, decided })
    }

    /// Stores what changed in `index` up to event `seq`, then `cursor`. On
    /// failure nothing is marked stored: the next call writes it all again.
    pub async fn store(
        &self,
        index: &mut Index,
        seq: u64,
        cursor: &liaison_runtime::fold::Cursor,
    ) -> Result<(), StoreError> {
        let fail = |e: String| StoreError(e);
        self.kv
            .put(DECIDED_KEY, seq.to_string().into())
            .await
            .map_err(|e| fail(e.to_string()))?;
        let (subjects, cases) = index.dirty();
        let mut writes = Vec::with_capacity(subjects.len() + cases.len());
        for (token, subject) in subjects {
            let key = subject_key(&token);
            let value = serde_json::to_vec(&StoredSubject { token, subject })
                .map_err(|e| fail(e.to_string()))?;
            writes.push((key, value));
        }
        for (case_id, case) in cases {
            let value = serde_json::to_vec(&case).map_err(|e| fail(e.to_string()))?;
            writes.push((format!("{CASE_PREFIX}{case_id}"), value));
        }
        let kv = &self.kv;
        let mut puts = futures_util::stream::iter(writes)
            .map(|(key, value)| async move { kv.put(&key, value.into()).await.map(|_| ()) })
            .buffer_unordered(PARALLEL_WRITES);
        while let Some(put) = puts.next().await {
            put.map_err(|e| fail(e.to_string()))?;
        }
        cursor.set(seq).await.map_err(|e| fail(e.to_string()))?;
        index.mark_stored();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_valid_kv_keys_whatever_the_token() {
        let key = super::subject_key("st1:AbC-_x");
        assert!(key.starts_with("subject.") && key.len() == 8 + 40, "{key}");
        assert!(key[8..].bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
