//! Appending a batch of decision records to LEDGER: chained onto a tail into
//! blocks of entries ([`crate::chain::Tail::link_blocks`]), each block one
//! message, all sent at once ([`send`]); their acknowledgements awaited
//! separately ([`InFlight::outcome`]), so the writer can send the next batch
//! meanwhile. What a failed append means, and what to send when, is the
//! writer's.
//!
//! Each block is stored only where it belongs: it carries
//! `Nats-Expected-Last-Sequence` (the stream sequence of the block before
//! it), and, when that block was sent by this writer and not yet known to
//! be stored, `Nats-Expected-Last-Msg-Id` (that block's message id, the hex
//! of its last entry's hash, unique to its place in the chain). nats-server
//! stores the block only if LEDGER ends with exactly that block; if the
//! block before was refused, every block sent behind it is refused too,
//! whatever another writer appended meanwhile. A single message is stored
//! whole or not at all: no atomic batch (ADR-50) is needed.

use crate::chain::Tail;
use crate::intake::Record;
use crate::merkle::{Hash, leaf_hash};
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::{self, publish::PublishAck};
use async_nats::{HeaderMap, header};
use liaison_core::subjects;
use std::future::{Future, IntoFuture as _};
use std::pin::Pin;

/// Where LEDGER ends, as the writer knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct End {
    /// Stream sequence of the last block (0 if none).
    pub seq: u64,
    /// Its message id, when this writer sent it since it last read the
    /// ledger (`None` after reading: the first block sent then expects the
    /// sequence alone).
    pub id: Option<String>,
}

/// A batch chained and sent, as it will be once stored.
pub struct Staged {
    /// The tail of the chain once the batch is stored.
    pub tail: Tail,
    /// Where LEDGER ends once it is stored.
    pub end: End,
    /// The Merkle leaf hash of each record, in order.
    pub leaves: Vec<Hash>,
    /// DECISIONS sequences and record ids of the records, in order.
    pub seqs: Vec<u64>,
    pub ids: Vec<String>,
    /// Blocks the batch was sent as.
    pub blocks: usize,
}

/// The acknowledgement of one block, to come.
type Ack = Pin<Box<dyn Future<Output = Result<PublishAck, PublishError>> + Send>>;

/// A batch whose blocks were sent, their acknowledgements awaited.
pub struct InFlight {
    pub staged: Staged,
    /// Acknowledgements not yet received, in order.
    acks: std::collections::VecDeque<Ack>,
    /// A block that could not be sent (none after it was).
    unsent: Option<String>,
    outcome: Option<Outcome>,
}

/// What became of a batch sent.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Stored, every block.
    Stored,
    /// Not (wholly) stored: LEDGER did not end where a block expected
    /// (another writer appended first, or a block before was not stored).
    Moved,
    /// Not (known to be wholly) stored, for another reason.
    Failed(String),
}

/// Chains `records` (at least one) after `tail`, LEDGER ending at `end`,
/// and sends their blocks.
pub async fn send(
    js: &jetstream::Context,
    records: &[&Record],
    tail: &Tail,
    end: &End,
) -> InFlight {
    let blocks = tail.link_blocks(records.iter().map(|r| (r.bytes.clone(), r.source_seq)));
    let mut flight = InFlight {
        staged: Staged {
            tail: tail.clone(),
            end: end.clone(),
            leaves: records.iter().map(|r| leaf_hash(&r.bytes)).collect(),
            seqs: records.iter().map(|r| r.source_seq).collect(),
            ids: records.iter().map(|r| r.id.clone()).collect(),
            blocks: blocks.len(),
        },
        acks: std::collections::VecDeque::with_capacity(blocks.len()),
        unsent: None,
        outcome: None,
    };
    for (payload, after) in blocks {
        let id = hex::encode(after.hash);
        let mut headers = HeaderMap::new();
        headers.insert(header::NATS_MESSAGE_ID, id.as_str());
        headers.insert(
            header::NATS_EXPECTED_LAST_SEQUENCE,
            flight.staged.end.seq.to_string().as_str(),
        );
        if let Some(last) = &flight.staged.end.id {
            headers.insert(header::NATS_EXPECTED_LAST_MESSAGE_ID, last.as_str());
        }
        match js
            .publish_with_headers(subjects::LEDGER_ENTRIES, headers, payload)
            .await
        {
            Ok(ack) => flight.acks.push_back(Box::pin(ack.into_future())),
            Err(e) => {
                flight.unsent = Some(format!("sending a ledger block: {e}"));
                break;
            }
        }
        flight.staged.tail = after;
        flight.staged.end = End {
            seq: flight.staged.end.seq + 1,
            id: Some(id),
        };
    }
    if records.is_empty() {
        flight.unsent = Some("an empty batch".into());
    }
    flight
}

impl InFlight {
    /// Waits for every block's acknowledgement (all of them, even after one
    /// was refused, so that nothing of this batch is still in flight).
    /// Cancel-safe, and it may be asked again once known.
    pub async fn outcome(&mut self) -> Outcome {
        while let Some(ack) = self.acks.front_mut() {
            let outcome = match ack.await {
                Ok(_) => Outcome::Stored,
                Err(e)
                    if matches!(
                        e.kind(),
                        PublishErrorKind::WrongLastSequence | PublishErrorKind::WrongLastMessageId
                    ) =>
                {
                    Outcome::Moved
                }
                Err(e) => Outcome::Failed(e.to_string()),
            };
            self.acks.pop_front();
            if !matches!(outcome, Outcome::Stored) && self.outcome.is_none() {
                self.outcome = Some(outcome);
            }
        }
        if let Some(outcome) = &self.outcome {
            return outcome.clone();
        }
        match &self.unsent {
            Some(e) => Outcome::Failed(e.clone()),
            None => Outcome::Stored,
        }
    }
}
