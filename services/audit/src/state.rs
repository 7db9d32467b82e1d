//! What the ledger writer knows of the ledger: the chain's tail, the Merkle
//! tree, which DECISIONS sequences and record ids are already chained, and
//! the last signed checkpoint. Rebuilt from LEDGER itself at start and after
//! a conflict ([`recover`], which refuses a broken ledger), and advanced only
//! by batches the server has stored ([`Ledger::stored`]). It decides what is
//! still to be chained ([`Ledger::pending`]); it does no I/O of its own
//! beyond [`recover`].

use crate::batch::{End, Staged};
use crate::chain::Tail;
use crate::checkpoint::NoteVerifier;
use crate::intake::{Intake, Record};
use crate::merkle::CompactRange;
use crate::recent::RecentIds;
use crate::writer::WriterError;
use async_nats::jetstream;
use liaison_proto::v1::AuditRecord;
use prost::Message as _;
use std::collections::{BTreeSet, HashSet};

/// What the writer knows of the ledger.
pub struct Ledger {
    pub tail: Tail,
    /// Where LEDGER ends (its last block).
    pub end: End,
    /// DECISIONS sequences already in the ledger, above the consumer's
    /// acknowledgement floor: a redelivered record is skipped only if it is
    /// here (redeliveries can come after later records).
    pub appended: BTreeSet<u64>,
    /// Sequences at or below this were acknowledged and forgotten.
    pub forgotten_below: u64,
    /// Record ids of the most recent entries: a record published twice under
    /// the same id (a sender's retry around a nats-server crash, when the
    /// server's own de-duplication did not hold) is chained once.
    pub recent: RecentIds,
    pub tree: CompactRange,
    /// Every record's Merkle leaf hash, in order: witnesses are sent
    /// consistency proofs from the size they last cosigned (32 bytes a
    /// record; ADR 0023 names the tiles that would bound it).
    pub leaves: Vec<crate::merkle::Hash>,
    /// Size of the last signed checkpoint.
    pub checkpointed: u64,
    pub latest_note: Option<String>,
}

/// The record id of an encoded `AuditRecord` (empty if it does not decode).
fn record_id(record: &bytes::Bytes) -> String {
    AuditRecord::decode(record.clone())
        .map(|r| r.record_id)
        .unwrap_or_default()
}

/// Reads and verifies the ledger and its checkpoints.
pub async fn recover(
    js: &jetstream::Context,
    verifier: &NoteVerifier,
) -> Result<Ledger, WriterError> {
    let mut appended = BTreeSet::new();
    let mut recent = RecentIds::default();
    let mut leaves = Vec::new();
    let inspector = crate::verify::scan(js, verifier, |entry| {
        appended.insert(entry.source_seq);
        recent.insert(record_id(&entry.record));
        leaves.push(crate::merkle::leaf_hash(&entry.record));
    })
    .await?;
    let (tail, last_block, tree, checkpointed) =
        inspector.into_state().map_err(WriterError::Broken)?;
    let notes = crate::verify::checkpoints(js).await?;
    Ok(Ledger {
        tail,
        end: End {
            seq: last_block,
            id: None,
        },
        appended,
        forgotten_below: 0,
        recent,
        tree,
        leaves,
        checkpointed,
        latest_note: notes.last().cloned(),
    })
}

impl Ledger {
    /// The records of `intake` still to chain, each once: not in the ledger,
    /// not in `ahead` (a batch sent but not yet stored), not repeated (by
    /// DECISIONS sequence and place in its pack, or by record id when it
    /// has one). A pack's records are chained in one batch, so a DECISIONS
    /// sequence in the ledger or ahead has every record of its pack there.
    pub fn pending<'a>(&self, intake: &'a Intake, ahead: Option<&Staged>) -> Vec<&'a Record> {
        let mut ahead_seqs: HashSet<u64> = HashSet::new();
        let mut taken: HashSet<(u64, u32)> = HashSet::new();
        let mut ids: HashSet<&str> = HashSet::new();
        if let Some(ahead) = ahead {
            ahead_seqs.extend(ahead.seqs.iter().copied());
            ids.extend(ahead.ids.iter().map(String::as_str));
        }
        intake
            .records
            .iter()
            .filter(|r| {
                !self.appended.contains(&r.source_seq)
                    && !ahead_seqs.contains(&r.source_seq)
                    && !self.recent.contains(&r.id)
                    && taken.insert((r.source_seq, r.part))
                    && (r.id.is_empty() || ids.insert(r.id.as_str()))
            })
            .collect()
    }

    /// Takes in a batch the server stored; it must start at the tail.
    pub fn stored(&mut self, staged: &Staged) -> Result<(), WriterError> {
        let first = staged.tail.next_index - staged.leaves.len() as u64;
        if first != self.tail.next_index {
            return Err(WriterError::OutOfPlace {
                first,
                end: self.tail.next_index,
            });
        }
        self.tail = staged.tail.clone();
        self.end = staged.end.clone();
        for leaf in &staged.leaves {
            self.tree.push(*leaf);
        }
        self.leaves.extend_from_slice(&staged.leaves);
        self.appended.extend(staged.seqs.iter().copied());
        for id in &staged.ids {
            self.recent.insert(id.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, id: &str) -> Record {
        part(seq, 0, id)
    }

    fn part(seq: u64, part: u32, id: &str) -> Record {
        Record {
            bytes: bytes::Bytes::from(format!("record {seq}.{part}")),
            source_seq: seq,
            part,
            id: id.to_owned(),
        }
    }

    fn ledger() -> Ledger {
        Ledger {
            tail: Tail::default(),
            end: End::default(),
            appended: BTreeSet::new(),
            forgotten_below: 0,
            recent: RecentIds::default(),
            tree: CompactRange::new(),
            leaves: Vec::new(),
            checkpointed: 0,
            latest_note: None,
        }
    }

    #[test]
    fn each_record_is_pending_once_and_records_without_an_id_are_not_copies() {
        let mut ledger = ledger();
        ledger.appended.insert(1);
        ledger.recent.insert("r-2".into());
        let intake = Intake {
            messages: vec![],
            records: vec![
                record(1, "r-1"), // already chained
                record(2, "r-2"), // its id already chained (a re-publication)
                record(3, "r-3"),
                record(3, "r-3"), // redelivered within the batch
                record(4, "r-3"), // the same record under another sequence
                record(5, ""),
                record(6, ""),     // another record without an id: not a copy
                part(7, 0, "r-7"), // a pack of three
                part(7, 1, "r-8"),
                part(7, 2, ""),
                part(7, 1, "r-8"), // the pack redelivered within the batch
            ],
            spans: vec![],
        };
        let pending: Vec<u64> = ledger
            .pending(&intake, None)
            .iter()
            .map(|r| r.source_seq)
            .collect();
        assert_eq!(pending, [3, 5, 6, 7, 7, 7]);
    }
}
