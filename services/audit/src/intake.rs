//! The ledger writer's side of DECISIONS: batches in, acknowledgements out.
//!
//! [`read`] takes decision records in stream order, gathers what is waiting
//! (or arrives within [`LINGER`] of the last one) into batches of at most
//! [`BATCH`], decodes each record once (its id, its trace context) and hands
//! the batches to the writer, reading ahead while the writer appends (the
//! consumer lets several batches be outstanding). An undecodable record is
//! refused here (terminated, never chained). [`acknowledge`] acknowledges the
//! records of each batch the writer has committed, off the writer's path.
//! Nothing here appends; nothing is acknowledged before its batch is stored.

use crate::writer::WriterError;
use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::{self, AckKind};
use bytes::Bytes;
use futures_util::{FutureExt as _, StreamExt as _};
use liaison_core::NatsContext as _;
use liaison_core::hop::Hop;
use liaison_core::{AgencyId, subjects, trace};
use liaison_proto::v1::{AuditRecord, AuditRecordPack, Decision, Operation};
use liaison_runtime::consume;
use prost::Message as _;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info_span};

/// Most decision records taken in one batch (chained into one block of at
/// most [`crate::chain::BLOCK_ENTRIES`] entries, or more if it is larger
/// than [`crate::chain::BLOCK_BYTES`]).
pub const BATCH: usize = 1000;
/// How long a batch waits for one more decision before it is handed over.
const LINGER: Duration = Duration::from_millis(2);

/// One decision record to chain.
#[derive(Debug, Clone)]
pub struct Record {
    /// The encoded `AuditRecord`, exactly as published (shared, not copied).
    pub bytes: Bytes,
    /// Its sequence in DECISIONS (the pack's, for a record of a pack).
    pub source_seq: u64,
    /// Its place in its pack (0 for a record published alone).
    pub part: u32,
    /// Its record id (empty if it has none).
    pub id: String,
}

/// Decision records taken together, in stream order.
pub struct Intake {
    /// Every message taken (to acknowledge once the batch is stored).
    pub messages: Vec<jetstream::Message>,
    /// The records to chain (the undecodable ones left out).
    pub records: Vec<Record>,
    /// `audit.append` spans of traced records, open until they are chained.
    pub spans: Vec<Hop>,
}

/// The `audit.append` span of a record that carries a trace context: the
/// record's ids, kind, operation, decision and code, nothing of its content.
fn append_span(
    context: Option<trace::TraceContext>,
    record: &AuditRecord,
    batch: usize,
) -> Option<Hop> {
    let context = context?;
    let name = |valid: bool, value: &str| {
        if valid {
            value.to_owned()
        } else {
            String::new()
        }
    };
    let span = info_span!(
        "audit.append",
        otel.kind = "consumer",
        operation = Operation::try_from(record.operation).map_or("", |o| o.as_str_name()),
        decision = Decision::try_from(record.decision).map_or("", |d| d.as_str_name()),
        code = record.code.as_str(),
        kind = record.kind.as_str(),
        agency = name(AgencyId::parse(&record.agency).is_ok(), &record.agency),
        envelope_id = name(
            liaison_core::ids::validate_envelope_id(&record.envelope_id).is_ok(),
            &record.envelope_id
        ),
        batch,
    );
    Some(Hop::continuing(span, Some(context)))
}

/// Decodes a gathered batch; undecodable records are terminated.
async fn decode(messages: Vec<jetstream::Message>) -> Result<Intake, WriterError> {
    let mut records = Vec::with_capacity(messages.len());
    let mut spans = Vec::new();
    for message in &messages {
        let source_seq = message
            .info()
            .nats("decision record metadata")?
            .stream_sequence;
        let packed = message
            .headers
            .as_ref()
            .is_some_and(|h| h.get(subjects::RECORD_PACK_HEADER).is_some());
        // A pack's records (ADR 0024), or the record published alone.
        let parts: Vec<(Bytes, Option<trace::TraceContext>)> = if packed {
            let Ok(pack) = AuditRecordPack::decode(message.payload.clone()) else {
                error!(
                    source_seq,
                    "Undecodable pack of decision records, not chained"
                );
                let _ = message.ack_with(AckKind::Term).await;
                continue;
            };
            pack.records
                .into_iter()
                .map(|p| {
                    let context = trace::from_fields(&p.traceparent, &p.tracestate);
                    (Bytes::from(p.record), context)
                })
                .collect()
        } else {
            vec![(
                message.payload.clone(),
                trace::extract(message.headers.as_ref()),
            )]
        };
        let mut decoded = Vec::with_capacity(parts.len());
        for (bytes, context) in parts {
            match AuditRecord::decode(bytes.clone()) {
                Ok(record) => decoded.push((bytes, context, record)),
                Err(_) => {
                    decoded.clear();
                    break;
                }
            }
        }
        if decoded.is_empty() {
            error!(source_seq, "Undecodable decision record, not chained");
            let _ = message.ack_with(AckKind::Term).await;
            continue;
        }
        for (part, (bytes, context, record)) in decoded.into_iter().enumerate() {
            spans.extend(append_span(context, &record, messages.len()));
            records.push(Record {
                bytes,
                source_seq,
                part: u32::try_from(part).unwrap_or(u32::MAX),
                id: record.record_id,
            });
        }
    }
    Ok(Intake {
        messages,
        records,
        spans,
    })
}

/// Reads DECISIONS into batches for the writer until `shutdown` (or until
/// the writer stops taking them); an error if the consumer ends.
pub async fn read(
    mut messages: pull::Stream,
    batches: mpsc::Sender<Intake>,
    shutdown: CancellationToken,
) -> Result<(), WriterError> {
    while let Some(first) =
        consume::next(&mut messages, &shutdown, subjects::LEDGER_WRITER_CONSUMER).await?
    {
        // Each block costs the server a message and, with sync_interval =
        // "always", a flush whatever its size, so gather what arrives within
        // LINGER of the last one.
        let mut batch = vec![first];
        while batch.len() < BATCH {
            let next = match messages.next().now_or_never() {
                Some(next) => next,
                None => match tokio::time::timeout(LINGER, messages.next()).await {
                    Ok(next) => next,
                    Err(_) => break,
                },
            };
            match next {
                Some(Ok(m)) => batch.push(m),
                _ => break,
            }
        }
        if batches.send(decode(batch).await?).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// Acknowledges, one by one, the messages of each batch the writer stored.
///
/// Each message on its own: one acknowledgement for a whole batch
/// (AckPolicy::All) was tried and loses records — after a writer restart
/// it also acknowledges earlier decisions still waiting to be redelivered
/// (tests/tests/e2e/restart.rs caught it).
pub async fn acknowledge(mut stored: mpsc::UnboundedReceiver<Vec<jetstream::Message>>) {
    while let Some(messages) = stored.recv().await {
        for message in &messages {
            if let Err(e) = message.ack().await {
                error!(error = %e, "Could not acknowledge decision record");
            }
        }
    }
}
