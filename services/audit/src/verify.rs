//! Verifying the ledger online: reads every signed checkpoint from
//! CHECKPOINTS and LEDGER from its first message to the last one present when
//! verification began, and inspects them ([`crate::inspect`]).

use crate::AuditError;
use crate::checkpoint::NoteVerifier;
use crate::inspect::{Inspector, Report};
use async_nats::jetstream;
use futures_util::StreamExt;
use liaison_kit::subjects;
use liaison_proto::v1::{AuditRecord, LedgerEntry};
use prost::Message as _;

/// A stream and its last sequence now.
pub async fn stream_end(
    js: &jetstream::Context,
    name: &str,
) -> Result<(jetstream::stream::Stream, u64), String> {
    let stream = js
        .get_stream(name)
        .await
        .map_err(|e| format!("stream {name}: {e}"))?;
    let last = stream
        .get_info()
        .await
        .map_err(|e| e.to_string())?
        .state
        .last_sequence;
    Ok((stream, last))
}

/// Messages asked for in one batched direct get (the server's limit is 1,000).
const GET_BATCH: u64 = 1000;
/// Batched direct gets in flight at once.
const GETS_IN_FLIGHT: usize = 4;
/// How long one batch may take to arrive.
const GET_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// One batched direct get in flight: the first sequence asked for, and
/// where its messages arrive.
struct Get {
    from: u64,
    replies: async_nats::Subscriber,
}

async fn ask(client: &async_nats::Client, name: &str, from: u64, last: u64) -> Result<Get, String> {
    let inbox = client.new_inbox();
    let replies = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| format!("reading {name}: {e}"))?;
    let request = serde_json::json!({"seq": from, "batch": GET_BATCH.min(last - from + 1)});
    client
        .publish_with_reply(
            format!("$JS.API.DIRECT.GET.{name}"),
            inbox,
            request.to_string().into(),
        )
        .await
        .map_err(|e| format!("reading {name}: {e}"))?;
    Ok(Get { from, replies })
}

/// Reads the messages of `stream` in order up to sequence `last`, calling
/// `each(seq, payload)` until it returns false.
///
/// Batched direct gets (ADR-31; the stream allows direct gets), several in
/// flight: the server streams up to 1,000 stored messages per request with no
/// consumer state and no acknowledgements — about three times the rate of an
/// ordered consumer here. A batch that ends early (the server may cap one by
/// bytes) is continued from where it stopped; sequences are checked by the
/// caller (the inspector names any gap).
async fn read_until(
    js: &jetstream::Context,
    name: &str,
    last: u64,
    mut each: impl FnMut(u64, &[u8]) -> bool,
) -> Result<(), String> {
    if last == 0 {
        return Ok(());
    }
    let client = js.client();
    let mut gets: std::collections::VecDeque<Get> = std::collections::VecDeque::new();
    let mut next = 1u64;
    loop {
        while gets.len() < GETS_IN_FLIGHT && next <= last {
            gets.push_back(ask(&client, name, next, last).await?);
            next += GET_BATCH.min(last - next + 1);
        }
        let Some(mut get) = gets.pop_front() else {
            return Ok(());
        };
        let mut seen = get.from - 1;
        loop {
            let message = tokio::time::timeout(GET_TIMEOUT, get.replies.next())
                .await
                .map_err(|_| format!("reading {name}: no reply within {GET_TIMEOUT:?}"))?
                .ok_or_else(|| format!("reading {name}: replies ended"))?;
            let headers = message.headers.as_ref();
            let sequence = headers
                .and_then(|h| h.get(async_nats::header::NATS_SEQUENCE))
                .and_then(|v| v.as_str().parse::<u64>().ok());
            let Some(seq) = sequence else {
                // End of the batch (status 204), or an error status.
                let status = message.status.map(|s| s.as_u16()).unwrap_or(0);
                if status != 204 && status != 404 {
                    return Err(format!(
                        "reading {name}: direct get answered status {status} {:?}",
                        message.description
                    ));
                }
                break;
            };
            seen = seq;
            if !each(seq, &message.payload) || seq >= last {
                return Ok(());
            }
        }
        let asked_to = (get.from + GET_BATCH - 1).min(last);
        if seen < asked_to {
            // Cut short: drop the gets after it and go on from where it stopped.
            gets.clear();
            next = seen + 1;
        }
    }
}

/// Reads every message of `stream` in order, up to the last present now,
/// calling `each(seq, payload)` until it returns false.
pub async fn read_stream(
    js: &jetstream::Context,
    stream: &str,
    each: impl FnMut(u64, &[u8]) -> bool,
) -> Result<u64, String> {
    let (_, last) = stream_end(js, stream).await?;
    read_until(js, stream, last, each).await?;
    Ok(last)
}

/// Every signed checkpoint note, oldest first.
pub async fn checkpoints(js: &jetstream::Context) -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    read_stream(js, subjects::CHECKPOINTS_STREAM, |_, payload| {
        notes.push(String::from_utf8_lossy(payload).into_owned());
        true
    })
    .await?;
    Ok(notes)
}

/// Reads and inspects the whole ledger, calling `each` on every intact entry;
/// returns the inspector before its report is drawn.
pub async fn scan(
    js: &jetstream::Context,
    verifier: &NoteVerifier,
    mut each: impl FnMut(&LedgerEntry),
) -> Result<Inspector, String> {
    let notes = checkpoints(js).await?;
    // Read exactly what the ledger held now: records appended while reading
    // are left for the next verification.
    let (_, total) = stream_end(js, subjects::LEDGER_STREAM).await?;
    let mut inspector = Inspector::new(total, &notes, verifier);
    read_until(js, subjects::LEDGER_STREAM, total, |seq, payload| {
        if let Some(entry) = inspector.push(seq, payload) {
            each(&entry);
        }
        !inspector.stopped()
    })
    .await?;
    Ok(inspector)
}

/// Verifies the whole ledger, calling `each` on every intact entry's record.
pub async fn verify(
    js: &jetstream::Context,
    verifier: &NoteVerifier,
    mut each: impl FnMut(&LedgerEntry, &AuditRecord),
) -> Result<Report, AuditError> {
    let inspector = scan(js, verifier, |entry| {
        let record = AuditRecord::decode(entry.record.as_slice()).unwrap_or_default();
        each(entry, &record);
    })
    .await
    .map_err(AuditError::Nats)?;
    Ok(inspector.finish())
}
