//! Checking a ledger end to end, wherever its blocks come from (the LEDGER
//! stream or an exported bundle): the hash chain link by link, the RFC 6962
//! Merkle tree over the records, and every signed checkpoint against the tree
//! of the same size. The first problem found is named at its record; a block
//! that does not decode, at its stream message and the records it must have
//! held (from the blocks either side of it).

use crate::chain::{self, Break, Checked, Tail};
use crate::checkpoint::{Checkpoint, CheckpointError, NoteVerifier};
use crate::merkle::CompactRange;
use liaison_proto::v1::LedgerEntry;

/// The first problem found in a ledger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Finding {
    #[error("{0}")]
    Chain(#[from] Break),
    #[error("signed checkpoint {index}: {error}")]
    BadCheckpoint {
        index: usize,
        error: CheckpointError,
    },
    #[error(
        "the first {size} records do not match the signed checkpoint of that size: records before {size} were rewritten (the chain was recomputed to hide it)"
    )]
    Rewritten { size: u64 },
    #[error(
        "the ledger ends after {ledger_size} records but a signed checkpoint covers {checkpoint_size}: records {ledger_size} to {last} were removed",
        last = checkpoint_size - 1
    )]
    Truncated {
        ledger_size: u64,
        checkpoint_size: u64,
    },
}

/// The outcome of an inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Records checked and found intact.
    pub verified: u64,
    /// LEDGER messages (blocks) the source held when inspection began.
    pub total: u64,
    /// LEDGER messages (blocks) read, up to the last one checked.
    pub read: u64,
    /// Hash-chain head of the last intact record (hex).
    pub head: String,
    /// Merkle root of the intact records (hex).
    pub root: String,
    /// Signed checkpoints matched by the tree.
    pub checkpoints_matched: usize,
    /// Size of the largest signed checkpoint matched.
    pub latest_checkpoint: Option<u64>,
    pub first_finding: Option<Finding>,
}

impl Report {
    pub fn intact(&self) -> bool {
        self.first_finding.is_none() && self.read == self.total
    }
}

/// Feeds entries in stream order; stops learning at the first finding.
pub struct Inspector {
    chain: chain::Verifier,
    tree: CompactRange,
    checkpoints: Vec<Checkpoint>,
    next_checkpoint: usize,
    matched: usize,
    latest: Option<u64>,
    total: u64,
    /// Stream sequence of the last block taken.
    read: u64,
    finding: Option<Finding>,
    /// A checkpoint the tree did not match, held back for one more entry:
    /// if that entry's link names the record exactly, that finding is better.
    mismatched: Option<u64>,
    /// A block that did not decode, held back for one more block: the next
    /// one's first index tells which records it must have held.
    undecodable: Option<Break>,
}

impl Inspector {
    /// An inspector for a ledger of `total` messages (blocks) with these signed
    /// checkpoint notes, checked with `verifier`.
    pub fn new(total: u64, notes: &[String], verifier: &NoteVerifier) -> Self {
        let mut finding = None;
        let mut checkpoints = Vec::new();
        for (index, note) in notes.iter().enumerate() {
            match verifier.open(note) {
                Ok(cp) => checkpoints.push(cp),
                Err(error) => {
                    finding.get_or_insert(Finding::BadCheckpoint { index, error });
                }
            }
        }
        checkpoints.sort_by_key(|c| c.size);
        checkpoints.retain(|c| c.size > 0);
        // A checkpoint stored again with a witness's cosignature is the same
        // checkpoint (one with the same size and another root is not).
        checkpoints.dedup();
        Self {
            chain: chain::Verifier::default(),
            tree: CompactRange::new(),
            checkpoints,
            next_checkpoint: 0,
            matched: 0,
            latest: None,
            total,
            read: 0,
            finding,
            mismatched: None,
            undecodable: None,
        }
    }

    /// Whether a finding has been made (no point reading further).
    pub fn stopped(&self) -> bool {
        self.finding.is_some()
    }

    fn settle(&mut self, next_index: Option<u64>) {
        if let Some(size) = self.mismatched.take() {
            self.finding.get_or_insert(Finding::Rewritten { size });
        }
        if let Some(mut undecodable) = self.undecodable.take() {
            if let Break::Undecodable { first, last, .. } = &mut undecodable {
                *last = next_index.filter(|n| n > first).map(|n| n - 1);
            }
            self.finding.get_or_insert(undecodable.into());
        }
    }

    /// Checks the block stored at stream sequence `seq` (1-based), returning
    /// its intact entries.
    pub fn push(&mut self, seq: u64, payload: &[u8]) -> Vec<LedgerEntry> {
        if self.stopped() {
            return Vec::new();
        }
        self.push_checked(Checked::of(seq, bytes::Bytes::copy_from_slice(payload)))
    }

    /// Takes the next block, already checked alone ([`Checked::of`], which
    /// may run on other threads), in stream order; returns its intact
    /// entries (those before the first finding).
    pub fn push_checked(&mut self, checked: Checked) -> Vec<LedgerEntry> {
        if self.stopped() {
            return Vec::new();
        }
        if self.undecodable.is_some() {
            self.settle(checked.first_index());
            return Vec::new();
        }
        let seq = checked.seq;
        self.read = seq;
        let entries = match checked.entries {
            Ok(entries) => entries,
            Err(reason) => {
                if self.mismatched.is_some() {
                    self.settle(None);
                } else {
                    self.undecodable = Some(self.chain.undecodable(seq, reason));
                }
                return Vec::new();
            }
        };
        let mut intact = Vec::with_capacity(entries.len());
        for checked in entries {
            let leaf = checked.leaf;
            let linked = self.chain.link(seq, checked);
            if let Some(size) = self.mismatched.take() {
                self.finding = Some(match linked {
                    Err(b) => b.into(),
                    Ok(_) => Finding::Rewritten { size },
                });
                break;
            }
            let entry = match linked {
                Ok(entry) => entry,
                Err(b) => {
                    self.finding = Some(b.into());
                    break;
                }
            };
            self.tree.push(leaf);
            let mut matched = true;
            while let Some(cp) = self.checkpoints.get(self.next_checkpoint) {
                if cp.size != self.tree.size() {
                    break;
                }
                if cp.root != self.tree.root() {
                    self.mismatched = Some(cp.size);
                    matched = false;
                    break;
                }
                self.matched += 1;
                self.latest = Some(cp.size);
                self.next_checkpoint += 1;
            }
            if matched {
                intact.push(entry);
            }
        }
        intact
    }

    /// The report, including truncation against the checkpoints.
    pub fn finish(mut self) -> Report {
        self.settle(None);
        let size = self.tree.size();
        if self.finding.is_none()
            && let Some(cp) = self.checkpoints.last().filter(|c| c.size > size)
        {
            self.finding = Some(Finding::Truncated {
                ledger_size: size,
                checkpoint_size: cp.size,
            });
        }
        Report {
            verified: self.chain.count(),
            total: self.total,
            read: self.read,
            head: hex::encode(self.chain.tail().hash),
            root: hex::encode(self.tree.root()),
            checkpoints_matched: self.matched,
            latest_checkpoint: self.latest,
            first_finding: self.finding,
        }
    }

    /// What a writer needs to carry on appending: the chain's tail, the
    /// stream sequence of its last block, the tree, and the size of the last
    /// checkpoint; or the finding that forbids it.
    pub fn into_state(self) -> Result<(Tail, u64, CompactRange, u64), Finding> {
        let latest = self.checkpoints.last().map_or(0, |c| c.size);
        let tail = self.chain.tail().clone();
        let last_block = self.chain.tail_seq();
        let tree = self.tree.clone();
        let report = self.finish();
        match report.first_finding {
            Some(finding) => Err(finding),
            None => Ok((tail, last_block, tree, latest)),
        }
    }
}
