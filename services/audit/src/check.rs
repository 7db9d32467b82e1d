//! Checking stored ledger blocks, in two steps so that the first can run in
//! parallel: [`Checked::of`] looks at one block (one LEDGER message) alone —
//! it decodes, is in canonical protobuf encoding, holds entries, each
//! entry's hash matches its content (every field is hashed) — and computes
//! each entry's Merkle leaf hash, on any thread; a [`Verifier`] then takes
//! the checked entries in stream order and checks what needs the one before:
//! the position, and the link. The first problem is named at its entry
//! ([`Break`]), or, for a block that does not decode, at its stream message
//! and the first record it must have held. The hash itself is
//! [`crate::chain`]'s.

use crate::chain::{Tail, entry_hash};
use crate::merkle::{Hash, leaf_hash};
use bytes::Bytes;
use liaison_proto::v1::{LedgerBlock, LedgerEntry};
use prost::Message;
use std::cell::RefCell;

/// Why a stored block or entry breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Break {
    #[error(
        "stream message {seq} is not a block of ledger entries ({reason}): it must have held {}",
        held(*first, *last)
    )]
    Undecodable {
        seq: u64,
        /// The first record it must have held (the one after its predecessor's last).
        first: u64,
        /// The last, when the next block tells (the one before its first).
        last: Option<u64>,
        reason: String,
    },
    #[error(
        "stream message {seq} holds entry index {found}, expected {expected} (an entry was removed, duplicated or reordered)"
    )]
    Index { seq: u64, found: u64, expected: u64 },
    #[error(
        "record {index} (stream message {seq}) was altered and its hash recomputed: the record after it still names the original"
    )]
    Rehashed { seq: u64, index: u64 },
    #[error(
        "record {index} (stream message {seq}) was altered: its content does not match its hash"
    )]
    Content { seq: u64, index: u64 },
}

/// The records an undecodable block must have held, in words.
fn held(first: u64, last: Option<u64>) -> String {
    match last {
        Some(last) if last == first => format!("record {first}"),
        Some(last) if last > first => format!("records {first} to {last}"),
        _ => format!("records from {first} on"),
    }
}

impl Break {
    /// The stream sequence of the message holding the first bad record.
    pub fn seq(&self) -> u64 {
        match self {
            Self::Undecodable { seq, .. }
            | Self::Index { seq, .. }
            | Self::Rehashed { seq, .. }
            | Self::Content { seq, .. } => *seq,
        }
    }
}

thread_local! {
    /// Where a block is re-encoded to check its encoding is canonical.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// One entry of a block, checked on its own.
#[derive(Debug, Clone)]
pub struct CheckedEntry {
    pub entry: LedgerEntry,
    /// Whether its hash matches its content.
    content: bool,
    /// Its Merkle leaf hash (of the record).
    pub leaf: Hash,
}

/// One stored block checked on its own, before its place in the chain is.
#[derive(Debug, Clone)]
pub struct Checked {
    /// Stream sequence (1-based) of the message holding the block.
    pub seq: u64,
    /// Its entries, or why it is not a block (undecodable, not canonical, empty).
    pub entries: Result<Vec<CheckedEntry>, String>,
}

impl Checked {
    /// Checks the stream message `seq` holding `payload` alone: the entries'
    /// byte fields share `payload`, nothing is copied.
    pub fn of(seq: u64, payload: Bytes) -> Self {
        Self {
            seq,
            entries: Self::entries(&payload),
        }
    }

    fn entries(payload: &Bytes) -> Result<Vec<CheckedEntry>, String> {
        let block = LedgerBlock::decode(payload.clone()).map_err(|e| e.to_string())?;
        let canonical = block.encoded_len() == payload.len()
            && SCRATCH.with_borrow_mut(|scratch| {
                scratch.clear();
                block.encode_raw(scratch);
                scratch.as_slice() == payload.as_ref()
            });
        if !canonical {
            return Err("not in canonical protobuf encoding".into());
        }
        if block.entries.is_empty() {
            return Err("it holds no entries".into());
        }
        Ok(block
            .entries
            .into_iter()
            .map(|entry| {
                let content = entry_hash(
                    entry.index,
                    entry.source_seq,
                    &entry.prev_hash,
                    &entry.record,
                )
                .as_slice()
                    == entry.hash;
                CheckedEntry {
                    leaf: leaf_hash(&entry.record),
                    entry,
                    content,
                }
            })
            .collect())
    }

    /// The index the block's first entry claims, if it decoded.
    pub fn first_index(&self) -> Option<u64> {
        self.entries
            .as_ref()
            .ok()
            .and_then(|e| e.first())
            .map(|c| c.entry.index)
    }
}

/// Checks entries one by one, in stream order.
#[derive(Debug, Default)]
pub struct Verifier {
    tail: Tail,
    /// Stream sequence of the block holding the last entry linked.
    tail_seq: u64,
}

impl Verifier {
    /// Checks the stream message `seq` (1-based) holding the block
    /// `payload`, returning its entries on success.
    pub fn check(&mut self, seq: u64, payload: &[u8]) -> Result<Vec<LedgerEntry>, Break> {
        let checked = Checked::of(seq, Bytes::copy_from_slice(payload));
        let entries = checked
            .entries
            .map_err(|reason| self.undecodable(seq, reason))?;
        entries
            .into_iter()
            .map(|entry| self.link(seq, entry))
            .collect()
    }

    /// The break for the block at `seq` that is not one.
    pub fn undecodable(&self, seq: u64, reason: String) -> Break {
        Break::Undecodable {
            seq,
            first: self.tail.next_index,
            last: None,
            reason,
        }
    }

    /// Places an entry of the block at stream sequence `seq`, checked alone,
    /// in the chain (the entries before it were linked), returning it on
    /// success.
    pub fn link(&mut self, seq: u64, checked: CheckedEntry) -> Result<LedgerEntry, Break> {
        let entry = checked.entry;
        let expected = self.tail.next_index;
        if entry.index != expected {
            return Err(Break::Index {
                seq,
                found: entry.index,
                expected,
            });
        }
        if !checked.content {
            return Err(Break::Content {
                seq,
                index: entry.index,
            });
        }
        if entry.prev_hash[..] != self.tail.hash {
            if entry.index == 0 {
                return Err(Break::Content { seq, index: 0 });
            }
            // This entry is intact and names its predecessor's original hash:
            // the predecessor was altered and its hash recomputed.
            return Err(Break::Rehashed {
                seq: self.tail_seq,
                index: entry.index.saturating_sub(1),
            });
        }
        self.tail = Tail::after(&entry).map_err(|reason| Break::Undecodable {
            seq,
            first: expected,
            last: Some(expected),
            reason,
        })?;
        self.tail_seq = seq;
        Ok(entry)
    }

    /// Entries verified so far.
    pub fn count(&self) -> u64 {
        self.tail.next_index
    }

    pub fn tail(&self) -> &Tail {
        &self.tail
    }

    /// Stream sequence of the block holding the last entry verified (0 if none).
    pub fn tail_seq(&self) -> u64 {
        self.tail_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{Tail, entry_hash};

    /// A chain of `n` entries, each in a block of its own (as one stored
    /// message per entry), so that each can be altered alone.
    fn chain(n: u64) -> Vec<Vec<u8>> {
        let mut tail = Tail::default();
        (0..n)
            .map(|i| {
                let entry = tail.append(format!("record {i}").into_bytes(), i + 1);
                tail = Tail::after(&entry).unwrap_or_else(|e| panic!("{e}"));
                entry.encode_to_vec()
            })
            .collect()
    }

    fn block(entry: &[u8]) -> Vec<u8> {
        let entry = LedgerEntry::decode(entry).unwrap_or_default();
        LedgerBlock {
            entries: vec![entry],
        }
        .encode_to_vec()
    }

    fn verify(entries: &[Vec<u8>]) -> Result<u64, Break> {
        let mut v = Verifier::default();
        for (i, bytes) in entries.iter().enumerate() {
            let stored = if bytes.starts_with(b"\xff") {
                bytes.clone()
            } else {
                block(bytes)
            };
            v.check(i as u64 + 1, &stored)?;
        }
        Ok(v.count())
    }

    #[test]
    fn a_chain_in_several_blocks_verifies_and_an_empty_block_does_not() {
        let blocks = Tail::default()
            .link_blocks((0..2500u64).map(|i| (Bytes::from(format!("record {i}")), i + 1)));
        let mut v = Verifier::default();
        for (seq, (stored, _)) in blocks.iter().enumerate() {
            assert!(v.check(seq as u64 + 1, stored).is_ok());
        }
        assert_eq!((v.count(), v.tail_seq()), (2500, 3));
        assert!(matches!(
            v.check(4, &[]),
            Err(Break::Undecodable {
                seq: 4,
                first: 2500,
                ..
            })
        ));
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(&chain(10)), Ok(10));
    }

    #[test]
    fn an_altered_record_is_named() {
        let mut entries = chain(10);
        let mut entry = LedgerEntry::decode(entries[4].as_slice()).unwrap_or_default();
        entry.record = Bytes::from_static(b"record X");
        entries[4] = entry.encode_to_vec();
        assert_eq!(verify(&entries), Err(Break::Content { seq: 5, index: 4 }));
    }

    #[test]
    fn an_altered_record_with_a_recomputed_hash_is_named_by_the_next_link() {
        let mut entries = chain(10);
        let mut entry = LedgerEntry::decode(entries[4].as_slice()).unwrap_or_default();
        entry.record = Bytes::from_static(b"record X");
        entry.hash = Bytes::copy_from_slice(&entry_hash(
            4,
            entry.source_seq,
            &entry.prev_hash,
            &entry.record,
        ));
        entries[4] = entry.encode_to_vec();
        assert_eq!(verify(&entries), Err(Break::Rehashed { seq: 5, index: 4 }));
    }

    #[test]
    fn removed_and_reordered_entries_are_found() {
        let mut entries = chain(10);
        entries.remove(3);
        assert!(matches!(
            verify(&entries),
            Err(Break::Index {
                seq: 4,
                found: 4,
                expected: 3
            })
        ));
        let mut entries = chain(10);
        entries.swap(2, 7);
        assert!(matches!(verify(&entries), Err(Break::Index { seq: 3, .. })));
        let mut entries = chain(3);
        entries[1] = b"\xff\xff garbage".to_vec();
        assert!(matches!(
            verify(&entries),
            Err(Break::Undecodable { seq: 2, .. })
        ));
    }
}
