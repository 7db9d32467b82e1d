//! Restoring the ledger from an exported bundle ([`crate::bundle`]) into
//! empty LEDGER and CHECKPOINTS streams, as after the loss of every node of
//! a cluster: the bundle is verified first, its blocks are appended in
//! order, each at the sequence it held (`Nats-Expected-Last-Sequence`), then
//! its signed checkpoints (a format 1 bundle's entries each as a block of
//! one). Nothing is re-signed: the restored ledger proves
//! itself against the checkpoints it was exported with, and the audit
//! service, started afterwards, verifies it again and continues the chain.
//! Each entry names the DECISIONS sequence it came from (the writer's
//! exactly-once key), so the new, empty DECISIONS is moved past the highest
//! one: new decisions are never taken for ones already chained. Run by the
//! operator before any service starts.

use crate::bundle::Bundle;
use crate::checkpoint::NoteVerifier;
use async_nats::jetstream;
use liaison_core::NatsContext as _;
use liaison_core::subjects;
use liaison_proto::v1::LedgerBlock;
use prost::Message as _;

/// What was restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    /// Records (ledger entries).
    pub entries: u64,
    /// LEDGER messages (blocks).
    pub blocks: u64,
    pub checkpoints: usize,
}

/// Why a restore was refused or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("the bundle does not verify: {0}")]
    Broken(String),
    #[error(
        "{stream} already holds {messages} messages: restore only into empty streams (provision a fresh cluster first)"
    )]
    NotEmpty { stream: &'static str, messages: u64 },
    #[error(transparent)]
    Nats(#[from] liaison_core::NatsError),
    #[error("DECISIONS ends at sequence {last}, not past {highest}, the highest the ledger names")]
    DecisionsBehind { last: u64, highest: u64 },
    #[error("block {index} of the bundle is not a base64 block of ledger entries")]
    Entry { index: usize },
}

async fn messages(js: &jetstream::Context, stream: &'static str) -> Result<u64, RestoreError> {
    let mut handle = js
        .get_stream(stream)
        .await
        .nats(format!("stream {stream}"))?;
    let info = handle.info().await.nats(format!("stream {stream}"))?;
    Ok(info.state.messages)
}

/// Verifies `bundle` with `verifier`, then appends it to the empty LEDGER
/// and CHECKPOINTS streams.
pub async fn restore(
    js: &jetstream::Context,
    bundle: &Bundle,
    verifier: &NoteVerifier,
) -> Result<Restored, RestoreError> {
    let report = bundle.inspect(verifier);
    if !report.intact() {
        return Err(RestoreError::Broken(format!("{report:?}")));
    }
    let mut highest_source = 0;
    let mut entries = 0;
    let decoded = bundle.stored();
    for (index, bytes) in decoded.iter().enumerate() {
        let block =
            LedgerBlock::decode(bytes.clone()).map_err(|_| RestoreError::Entry { index })?;
        entries += block.entries.len() as u64;
        for entry in &block.entries {
            highest_source = highest_source.max(entry.source_seq);
        }
    }
    for stream in [
        subjects::LEDGER_STREAM,
        subjects::CHECKPOINTS_STREAM,
        subjects::DECISIONS_STREAM,
    ] {
        let held = messages(js, stream).await?;
        if held > 0 {
            return Err(RestoreError::NotEmpty {
                stream,
                messages: held,
            });
        }
    }
    let decoded_blocks = decoded.len() as u64;
    for (index, bytes) in decoded.into_iter().enumerate() {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Expected-Last-Sequence", index.to_string().as_str());
        js.publish_with_headers(subjects::LEDGER_ENTRIES, headers, bytes)
            .await
            .nats(format!("block {index}"))?
            .await
            .nats(format!("block {index}"))?;
    }
    for (index, note) in bundle.checkpoints.iter().enumerate() {
        js.publish(subjects::LEDGER_CHECKPOINTS, note.clone().into())
            .await
            .nats(format!("checkpoint {index}"))?
            .await
            .nats(format!("checkpoint {index}"))?;
    }
    // The next decision gets a sequence above every one the ledger names.
    let mut decisions = js
        .get_stream(subjects::DECISIONS_STREAM)
        .await
        .nats("stream DECISIONS")?;
    decisions
        .purge()
        .sequence(highest_source + 1)
        .await
        .nats("moving DECISIONS on")?;
    let last = decisions
        .info()
        .await
        .nats("stream DECISIONS")?
        .state
        .last_sequence;
    if last < highest_source {
        return Err(RestoreError::DecisionsBehind {
            last,
            highest: highest_source,
        });
    }
    Ok(Restored {
        entries,
        blocks: decoded_blocks,
        checkpoints: bundle.checkpoints.len(),
    })
}
