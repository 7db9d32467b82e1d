//! Batched direct gets (nats-server 2.11+, streams with `allow_direct`): the
//! next `n` messages of a stream on a subject filter (wildcards allowed) from
//! a sequence on, in one request, served from the stream's per-subject
//! index — no consumer. The gateway reads agencies' inboxes this way
//! (docs/decisions/0019-delivery-at-national-size.md).
//!
//! The server answers on the request's reply subject with one message per
//! stored message (its headers plus `Nats-Sequence`, `Nats-Subject`, …) and
//! ends the batch with a status 204 (`EOB`); with status 404 when nothing
//! matches.

use async_nats::{HeaderMap, StatusCode};
use bytes::Bytes;
use futures_util::StreamExt as _;
use std::time::Duration;

/// Most messages asked for in one request.
pub const MAX_BATCH: usize = 1000;

/// One stored message.
#[derive(Debug, Clone)]
pub struct Stored {
    pub sequence: u64,
    pub subject: String,
    pub headers: HeaderMap,
    pub payload: Bytes,
}

/// Why a batch could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DirectError {
    #[error("direct get on {stream}: {reason}")]
    Failed { stream: String, reason: String },
    #[error("direct get on {stream}: no answer within {timeout:?}")]
    TimedOut { stream: String, timeout: Duration },
}

/// The messages of `stream` on `subject` from sequence `from` on, at most
/// `n` (1 to [`MAX_BATCH`]) and about `max_bytes` (the server stops after
/// the message that crosses it), in order; empty when there are none.
pub async fn next_batch(
    client: &async_nats::Client,
    stream: &str,
    subject: &str,
    from: u64,
    n: usize,
    max_bytes: usize,
    timeout: Duration,
) -> Result<Vec<Stored>, DirectError> {
    let failed = |reason: String| DirectError::Failed {
        stream: stream.to_owned(),
        reason,
    };
    let request = serde_json::json!({
        "seq": from.max(1),
        "next_by_subj": subject,
        "batch": n.clamp(1, MAX_BATCH),
        "max_bytes": max_bytes.max(1),
    });
    let reply = client.new_inbox();
    let mut answers = client
        .subscribe(reply.clone())
        .await
        .map_err(|e| failed(e.to_string()))?;
    client
        .publish_with_reply(
            format!("$JS.API.DIRECT.GET.{stream}"),
            reply,
            request.to_string().into(),
        )
        .await
        .map_err(|e| failed(e.to_string()))?;
    let mut out = Vec::new();
    let read = async {
        while let Some(message) = answers.next().await {
            match message.status {
                None | Some(StatusCode::OK) => {}
                // 204: end of the batch; 404: nothing (more) on the subject.
                Some(status) if status.as_u16() == 204 || status == StatusCode::NOT_FOUND => {
                    return Ok(());
                }
                Some(status) => {
                    return Err(failed(format!(
                        "status {status}: {}",
                        message.description.as_deref().unwrap_or("")
                    )));
                }
            }
            let headers = message.headers.unwrap_or_default();
            let sequence = headers
                .get("Nats-Sequence")
                .and_then(|v| v.as_str().parse().ok())
                .ok_or_else(|| failed("an answer without Nats-Sequence".to_owned()))?;
            let subject = headers
                .get("Nats-Subject")
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default();
            out.push(Stored {
                sequence,
                subject,
                headers,
                payload: message.payload,
            });
            if out.len() >= n.clamp(1, MAX_BATCH) {
                // The end-of-batch marker follows; nothing more to wait for.
                return Ok(());
            }
        }
        Err(failed("the answer subscription ended".to_owned()))
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(())) => Ok(out),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(DirectError::TimedOut {
            stream: stream.to_owned(),
            timeout,
        }),
    }
}
