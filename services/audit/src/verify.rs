//! Verifying the ledger: reads LEDGER from its first message to the last one
//! present when verification began, checks every link, and reports the number
//! of records or the first bad one.

use crate::AuditError;
use crate::chain::{Break, Verifier};
use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use liaison_kit::subjects;
use liaison_proto::v1::{AuditRecord, LedgerEntry};
use prost::Message as _;

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Records checked and found intact.
    pub verified: u64,
    /// Messages in LEDGER when verification began.
    pub total: u64,
    /// Hash of the last intact record (hex).
    pub head: String,
    /// The first bad record, if any.
    pub first_break: Option<Break>,
}

impl Report {
    pub fn intact(&self) -> bool {
        self.first_break.is_none() && self.verified == self.total
    }
}

/// Reads and verifies the whole ledger, calling `each` on every intact entry.
pub async fn verify(
    js: &jetstream::Context,
    mut each: impl FnMut(&LedgerEntry, &AuditRecord),
) -> Result<Report, AuditError> {
    verify_inner(js, &mut each).await.map_err(AuditError::Nats)
}

async fn verify_inner(
    js: &jetstream::Context,
    each: &mut impl FnMut(&LedgerEntry, &AuditRecord),
) -> Result<Report, String> {
    let stream = js
        .get_stream(subjects::LEDGER_STREAM)
        .await
        .map_err(|e| format!("LEDGER stream: {e}"))?;
    let state = stream.get_info().await.map_err(|e| e.to_string())?.state;
    let total = state.last_sequence;
    let mut verifier = Verifier::default();
    let mut first_break = None;
    if total > 0 {
        let reader = stream
            .create_consumer(consumer::pull::OrderedConfig::default())
            .await
            .map_err(|e| format!("reading LEDGER: {e}"))?;
        let mut messages = reader.messages().await.map_err(|e| e.to_string())?;
        let mut expected_seq = 1;
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| e.to_string())?;
            let seq = message.info().map_err(|e| e.to_string())?.stream_sequence;
            // A sequence gap means messages were removed from the stream.
            let result = if seq != expected_seq {
                Err(Break::Index {
                    seq,
                    found: seq - 1,
                    expected: expected_seq - 1,
                })
            } else {
                verifier.check(seq, &message.payload)
            };
            match result {
                Ok(entry) => {
                    let record = AuditRecord::decode(entry.record.as_slice()).unwrap_or_default();
                    each(&entry, &record);
                }
                Err(b) => {
                    first_break = Some(b);
                    break;
                }
            }
            if seq >= total {
                break;
            }
            expected_seq = seq + 1;
        }
    }
    Ok(Report {
        verified: verifier.count(),
        total,
        head: hex::encode(verifier.tail().hash),
        first_break,
    })
}
