//! Verifying the ledger online: reads every signed checkpoint from
//! CHECKPOINTS and LEDGER from its first block to the last one present when
//! verification began ([`crate::reader`]), and inspects them
//! ([`crate::inspect`]).

use crate::AuditError;
use crate::chain::Checked;
use crate::checkpoint::NoteVerifier;
use crate::consult::Grant;
use crate::inspect::{Inspector, Report};
use crate::reader::ReadError;
use crate::reader::Source;
use async_nats::jetstream;
use liaison_core::NatsContext as _;
use liaison_core::subjects;
use liaison_proto::v1::{AuditRecord, LedgerBlock, LedgerEntry};
use prost::Message as _;

/// A stream and its last sequence now.
pub async fn stream_end(
    js: &jetstream::Context,
    name: &str,
) -> Result<(jetstream::stream::Stream, u64), ReadError> {
    let stream = js.get_stream(name).await.nats(format!("stream {name}"))?;
    let last = stream
        .get_info()
        .await
        .nats(format!("stream {name}"))?
        .state
        .last_sequence;
    Ok((stream, last))
}

/// How many records the ledger holds up to its block at stream sequence
/// `last`: one more than the index of that block's last entry (0 if there
/// is no block, or it does not decode: verification says why).
pub async fn records_up_to(
    stream: &jetstream::stream::Stream,
    last: u64,
) -> Result<u64, ReadError> {
    if last == 0 {
        return Ok(0);
    }
    let message = stream
        .direct_get(last)
        .await
        .nats(format!("{} message {last}", subjects::LEDGER_STREAM))?;
    Ok(LedgerBlock::decode(message.payload)
        .ok()
        .and_then(|b| b.entries.last().map(|e| e.index + 1))
        .unwrap_or(0))
}

/// The LEDGER stream, the sequence of its last block and the number of
/// records it holds, now.
pub async fn ledger_end(
    js: &jetstream::Context,
) -> Result<(jetstream::stream::Stream, u64, u64), ReadError> {
    let (stream, last) = stream_end(js, subjects::LEDGER_STREAM).await?;
    let records = records_up_to(&stream, last).await?;
    Ok((stream, last, records))
}

/// How a reader reaches the ledger.
#[derive(Clone)]
pub enum Access {
    /// With rights on LEDGER itself: the audit service, an operator.
    Direct(jetstream::Context),
    /// An auditor: CHECKPOINTS directly, LEDGER only through the consumers
    /// granted for a recorded consultation.
    Granted(jetstream::Context, Grant),
}

impl From<&jetstream::Context> for Access {
    fn from(js: &jetstream::Context) -> Self {
        Self::Direct(js.clone())
    }
}

impl Access {
    pub fn js(&self) -> &jetstream::Context {
        match self {
            Self::Direct(js) | Self::Granted(js, _) => js,
        }
    }

    /// Where LEDGER is read from, and its last sequence to read.
    pub async fn ledger(&self) -> Result<(Source, u64), ReadError> {
        match self {
            Self::Direct(js) => {
                let (stream, last) = stream_end(js, subjects::LEDGER_STREAM).await?;
                Ok((Source::from(stream), last))
            }
            Self::Granted(_, grant) => Ok((Source::Granted(grant.clone()), grant.last)),
        }
    }
}

/// Reads every LEDGER message in order, up to the last present now (or when
/// the consultation was granted), calling `each(seq, payload)` until it
/// returns false.
pub async fn read_ledger(
    access: &Access,
    mut each: impl FnMut(u64, &[u8]) -> bool,
) -> Result<u64, ReadError> {
    let (source, last) = access.ledger().await?;
    crate::reader::read_range(source, 1, last, |seq, payload| each(seq, &payload))
        .await
        .map_err(|e| ReadError::reading(subjects::LEDGER_STREAM, e))?;
    Ok(last)
}

/// Reads every message of `stream` in order, up to the last present now,
/// calling `each(seq, payload)` until it returns false.
pub async fn read_stream(
    js: &jetstream::Context,
    stream: &str,
    mut each: impl FnMut(u64, &[u8]) -> bool,
) -> Result<u64, ReadError> {
    let (handle, last) = stream_end(js, stream).await?;
    crate::reader::read_range(&handle, 1, last, |seq, payload| each(seq, &payload))
        .await
        .map_err(|e| ReadError::reading(stream, e))?;
    Ok(last)
}

/// Every signed checkpoint note, oldest first.
pub async fn checkpoints(js: &jetstream::Context) -> Result<Vec<String>, ReadError> {
    let mut notes = Vec::new();
    read_stream(js, subjects::CHECKPOINTS_STREAM, |_, payload| {
        notes.push(String::from_utf8_lossy(payload).into_owned());
        true
    })
    .await?;
    Ok(notes)
}

/// Reads and inspects the whole ledger as it is now, calling `each` on every
/// intact entry; returns the inspector before its report is drawn.
pub async fn scan(
    access: impl Into<Access>,
    verifier: &NoteVerifier,
    mut each: impl FnMut(&LedgerEntry),
) -> Result<Inspector, ReadError> {
    let access = access.into();
    let notes = checkpoints(access.js()).await?;
    // Read exactly what the ledger held now: records appended while reading
    // are left for the next verification.
    let (source, last) = access.ledger().await?;
    let mut inspector = Inspector::new(last, &notes, verifier);
    crate::reader::read_range(source, 1, last, |seq, payload| {
        // The entries' fields share the received bytes: nothing is copied.
        for entry in inspector.push_checked(Checked::of(seq, payload)) {
            each(&entry);
        }
        !inspector.stopped()
    })
    .await
    .map_err(|e| ReadError::reading(subjects::LEDGER_STREAM, e))?;
    Ok(inspector)
}

/// Verifies the whole ledger, calling `each` on every intact entry's record.
pub async fn verify(
    access: impl Into<Access>,
    verifier: &NoteVerifier,
    mut each: impl FnMut(&LedgerEntry, &AuditRecord),
) -> Result<Report, AuditError> {
    let inspector = scan(access, verifier, |entry| {
        let record = AuditRecord::decode(entry.record.clone()).unwrap_or_default();
        each(entry, &record);
    })
    .await?;
    Ok(inspector.finish())
}
