//! One atomic batch publish to LEDGER (ADR-50): decision records chained
//! onto a tail, each entry encoded once into its message, every message but
//! the last sent at once ([`stage`]), the last one committing the batch
//! ([`Staged::commit`]): stored whole or not at all, and only if LEDGER still
//! ends where the first entry says it must (`Nats-Expected-Last-Sequence`),
//! so a second writer cannot fork the chain. One acknowledgement, awaited
//! separately ([`InFlight::outcome`]), so the writer can stage the next batch
//! meanwhile. What a failed commit means, and when to commit, is the
//! writer's.

use crate::chain::Tail;
use crate::intake::Record;
use crate::merkle::{Hash, leaf_hash};
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::{self, publish::PublishAck};
use async_nats::{HeaderMap, Subject, header};
use bytes::Bytes;
use liaison_kit::subjects;
use std::future::{Future, IntoFuture as _};
use std::pin::Pin;

/// A batch whose entries are chained and sent, all but the commit.
pub struct Staged {
    /// The tail of the chain once the batch is stored.
    pub tail: Tail,
    /// The Merkle leaf hash of each record, in order.
    pub leaves: Vec<Hash>,
    /// DECISIONS sequences and record ids of the records, in order.
    pub seqs: Vec<u64>,
    pub ids: Vec<String>,
    /// The last entry's message, which commits the batch when sent.
    last: (HeaderMap, Bytes),
}

/// The acknowledgement of a commit, to come.
type Ack = Pin<Box<dyn Future<Output = Result<PublishAck, PublishError>> + Send>>;

/// A batch whose commit was sent, its acknowledgement awaited.
pub struct InFlight {
    pub staged: Staged,
    ack: Option<Ack>,
    outcome: Option<Outcome>,
}

/// What became of a committed batch.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Stored, whole.
    Stored,
    /// Not stored: LEDGER did not end where the batch expected (another
    /// writer appended first, or an earlier batch was not stored).
    Moved,
    /// Not stored, for another reason.
    Failed(String),
}

/// A batch id: random, 16 characters (it is stored with every entry).
fn batch_id() -> String {
    format!("{:016x}", uuid::Uuid::new_v4().as_u64_pair().0)
}

/// Chains `records` (at least one) after `tail` and sends every entry but
/// the last as part of one new atomic batch.
pub async fn stage(
    client: &async_nats::Client,
    records: &[&Record],
    tail: &Tail,
) -> Result<Staged, String> {
    if records.is_empty() {
        return Err("an empty batch".into());
    }
    let id = batch_id();
    let subject = Subject::from_static(subjects::LEDGER_ENTRIES);
    let mut staged = Staged {
        tail: tail.clone(),
        leaves: Vec::with_capacity(records.len()),
        seqs: Vec::with_capacity(records.len()),
        ids: Vec::with_capacity(records.len()),
        last: (HeaderMap::new(), Bytes::new()),
    };
    for (k, record) in records.iter().enumerate() {
        let mut headers = HeaderMap::new();
        headers.insert(header::NATS_BATCH_ID, id.as_str());
        headers.insert(header::NATS_BATCH_SEQUENCE, (k + 1).to_string().as_str());
        if k == 0 {
            headers.insert(
                header::NATS_EXPECTED_LAST_SEQUENCE,
                tail.next_index.to_string().as_str(),
            );
        }
        let (payload, next) = staged.tail.link(record.bytes.clone(), record.source_seq);
        staged.tail = next;
        staged.leaves.push(leaf_hash(&record.bytes));
        staged.seqs.push(record.source_seq);
        staged.ids.push(record.id.clone());
        if k + 1 == records.len() {
            headers.insert(header::NATS_BATCH_COMMIT, header::NATS_BATCH_COMMIT_FINAL);
            staged.last = (headers, payload);
        } else {
            client
                .publish_with_headers(subject.clone(), headers, payload)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(staged)
}

impl Staged {
    /// Sends the last entry, which commits the batch.
    pub async fn commit(mut self, js: &jetstream::Context) -> Result<InFlight, String> {
        let (headers, payload) = std::mem::take(&mut self.last);
        let ack = js
            .publish_with_headers(subjects::LEDGER_ENTRIES, headers, payload)
            .await
            .map_err(|e| e.to_string())?;
        Ok(InFlight {
            staged: self,
            ack: Some(Box::pin(ack.into_future())),
            outcome: None,
        })
    }
}

impl InFlight {
    /// Waits for the batch's acknowledgement. Cancel-safe, and it may be
    /// asked again once known.
    pub async fn outcome(&mut self) -> Outcome {
        if let Some(ack) = self.ack.as_mut() {
            let outcome = match ack.await {
                Ok(_) => Outcome::Stored,
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Outcome::Moved,
                Err(e) => Outcome::Failed(e.to_string()),
            };
            self.ack = None;
            self.outcome = Some(outcome);
        }
        self.outcome
            .clone()
            .unwrap_or_else(|| Outcome::Failed("no acknowledgement".into()))
    }
}
