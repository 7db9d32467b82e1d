//! The ledger writer: consumes decision records from DECISIONS one at a time,
//! in order, and appends each to LEDGER as the next link of the hash chain.
//!
//! Single writer: every append states the sequence it expects LEDGER to end
//! at (`Nats-Expected-Last-Sequence`), so a second writer cannot fork the
//! chain; on a conflict the writer re-reads the tail. Exactly once: each entry
//! records the DECISIONS sequence it came from, and a record redelivered after
//! a crash (appended, not yet acknowledged) is recognised and skipped.

use crate::chain::Tail;
use async_nats::HeaderMap;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::{self, AckKind};
use liaison_kit::{consume, subjects};
use liaison_proto::v1::{AuditRecord, LedgerEntry};
use prost::Message as _;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

/// Reads the end of the chain from LEDGER.
pub async fn load_tail(js: &jetstream::Context) -> Result<Tail, String> {
    let stream = js
        .get_stream(subjects::LEDGER_STREAM)
        .await
        .map_err(|e| format!("LEDGER stream: {e}"))?;
    let last = stream
        .get_info()
        .await
        .map_err(|e| e.to_string())?
        .state
        .last_sequence;
    if last == 0 {
        return Ok(Tail::default());
    }
    let message = stream
        .direct_get(last)
        .await
        .map_err(|e| format!("LEDGER message {last}: {e}"))?;
    let entry = LedgerEntry::decode(message.payload.as_ref())
        .map_err(|e| format!("LEDGER message {last} is not a ledger entry: {e}"))?;
    if entry.index + 1 != last {
        return Err(format!(
            "LEDGER message {last} holds entry {}: the ledger is damaged, run `liaison audit verify`",
            entry.index
        ));
    }
    Tail::after(&entry)
}

enum Appended {
    Done(Tail),
    /// Another writer moved the end of the chain.
    Conflict,
}

async fn append(
    js: &jetstream::Context,
    tail: &Tail,
    record: Vec<u8>,
    source_seq: u64,
) -> Result<Appended, String> {
    let entry = tail.append(record, source_seq);
    let mut headers = HeaderMap::new();
    headers.insert(
        async_nats::header::NATS_EXPECTED_LAST_SEQUENCE,
        tail.next_index.to_string().as_str(),
    );
    let publish = js
        .publish_with_headers(
            subjects::LEDGER_ENTRIES,
            headers,
            entry.encode_to_vec().into(),
        )
        .await
        .map_err(|e| e.to_string())?;
    match publish.await {
        Ok(_) => Ok(Appended::Done(Tail::after(&entry)?)),
        Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Ok(Appended::Conflict),
        Err(e) => Err(e.to_string()),
    }
}

/// Appends decision records until `shutdown`; the record in hand is finished first.
pub async fn serve(
    js: jetstream::Context,
    consumer: PullConsumer,
    shutdown: CancellationToken,
) -> Result<(), String> {
    let mut tail = load_tail(&js).await?;
    let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
    while let Some(message) =
        consume::next(&mut messages, &shutdown, subjects::LEDGER_WRITER_CONSUMER).await?
    {
        let source_seq = message.info().map_err(|e| e.to_string())?.stream_sequence;
        if AuditRecord::decode(message.payload.as_ref()).is_err() {
            error!(source_seq, "Undecodable decision record, not chained");
            let _ = message.ack_with(AckKind::Term).await;
            continue;
        }
        loop {
            if source_seq <= tail.source_seq {
                debug!(source_seq, "Decision already chained");
                break;
            }
            match append(&js, &tail, message.payload.to_vec(), source_seq).await {
                Ok(Appended::Done(next)) => {
                    tail = next;
                    break;
                }
                Ok(Appended::Conflict) => {
                    warn!("LEDGER moved under this writer; re-reading its tail");
                    tail = load_tail(&js).await?;
                }
                Err(e) => {
                    error!(error = %e, "Ledger append failed; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        () = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                    tail = load_tail(&js).await.unwrap_or(tail);
                }
            }
        }
        if let Err(e) = message.ack().await {
            error!(error = %e, "Could not acknowledge decision record");
        }
    }
    Ok(())
}
