//! JetStream atomic batch publishing (nats-server ≥ 2.12, a stream with
//! `allow_atomic`): every message of a batch is stored, in order, or none
//! is. The messages before the last are plain publishes carrying the
//! batch's id and their place in it; the last commits and is answered.
//! Used for an inbox's packs of copies when many wait at once (ADR 0019).
//! An atomic batch buys atomicity, not fewer flushes: nats-server stores its
//! messages one by one, each flushed with `sync_interval = always`, after
//! staging them (about 2.5 ms a commit); what must be durable together in
//! one flush is stored as one message instead (ADR 0024).

use async_nats::HeaderMap;
use bytes::Bytes;
use std::time::Duration;

/// How long a batch's commit is waited for.
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);
/// JetStream's error code: a guarded publish found the subject moved on.
const WRONG_LAST_SEQUENCE: u64 = 10071;
/// JetStream's error code: a message of the batch has a `Nats-Msg-Id`
/// already stored (the batch is refused whole).
const BATCH_DUPLICATE: u64 = 10201;

/// One message of a batch.
pub struct Message {
    pub subject: String,
    pub headers: HeaderMap,
    pub payload: Bytes,
}

/// What JetStream answered a batch's commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// Stored: the stream sequence of its last message.
    Stored(u64),
    /// A guard on a message failed (`Nats-Expected-Last-Subject-Sequence`).
    Moved,
    /// A message of the batch was stored before (its `Nats-Msg-Id`).
    Duplicate,
}

/// Publishes `messages` as the atomic batch `id` on `client` (the
/// messages are kept: a refused batch may be stored again otherwise).
pub async fn publish(
    client: &async_nats::Client,
    id: &str,
    messages: &[Message],
) -> Result<Committed, String> {
    let last = messages.len();
    for (i, message) in messages.iter().enumerate() {
        let mut headers = message.headers.clone();
        headers.insert("Nats-Batch-Id", id);
        headers.insert("Nats-Batch-Sequence", (i + 1).to_string().as_str());
        if i + 1 < last {
            client
                .publish_with_headers(message.subject.clone(), headers, message.payload.clone())
                .await
                .map_err(|e| format!("publish: {e}"))?;
            continue;
        }
        headers.insert("Nats-Batch-Commit", "1");
        let reply = tokio::time::timeout(
            COMMIT_TIMEOUT,
            client.request_with_headers(message.subject.clone(), headers, message.payload.clone()),
        )
        .await
        .map_err(|_| format!("no commit acknowledgement within {COMMIT_TIMEOUT:?}"))?
        .map_err(|e| format!("commit: {e}"))?;
        return committed(&reply.payload);
    }
    Err("an empty batch".to_owned())
}

/// What JetStream answered a batch's commit.
pub fn committed(payload: &[u8]) -> Result<Committed, String> {
    #[derive(serde::Deserialize)]
    struct ApiError {
        #[serde(default)]
        err_code: u64,
        #[serde(default)]
        description: String,
    }
    #[derive(serde::Deserialize)]
    struct Ack {
        #[serde(default)]
        seq: u64,
        #[serde(default)]
        error: Option<ApiError>,
    }
    let ack: Ack = serde_json::from_slice(payload)
        .map_err(|e| format!("an unreadable commit acknowledgement: {e}"))?;
    match ack.error {
        None if ack.seq > 0 => Ok(Committed::Stored(ack.seq)),
        None => Err("a commit acknowledgement without a sequence".to_owned()),
        Some(e) if e.err_code == WRONG_LAST_SEQUENCE => Ok(Committed::Moved),
        Some(e) if e.err_code == BATCH_DUPLICATE => Ok(Committed::Duplicate),
        Some(e) => Err(format!(
            "batch refused: {} (error code {})",
            e.description, e.err_code
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_answers_are_read_as_stored_moved_duplicate_or_refused() {
        assert!(matches!(
            committed(br#"{"stream":"DELIVERY","seq":7,"batch":"b","count":3}"#),
            Ok(Committed::Stored(7))
        ));
        assert!(matches!(
            committed(
                br#"{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 2"},"stream":"D","seq":0}"#
            ),
            Ok(Committed::Moved)
        ));
        assert!(matches!(
            committed(
                br#"{"error":{"code":400,"err_code":10201,"description":"atomic publish batch contains duplicate message id"},"seq":0}"#
            ),
            Ok(Committed::Duplicate)
        ));
        let refused = committed(
            br#"{"error":{"code":400,"err_code":10174,"description":"atomic publish is disabled"}}"#,
        );
        assert!(
            matches!(&refused, Err(e) if e.contains("atomic publish is disabled") && e.contains("10174")),
            "{}",
            refused.err().unwrap_or_default()
        );
        assert!(committed(b"not json").is_err());
        assert!(committed(b"{}").is_err());
    }
}
