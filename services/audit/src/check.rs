//! Checking stored ledger entries, in two steps so that the first can run in
//! parallel: [`Checked::of`] looks at one entry alone — it decodes, is in
//! canonical protobuf encoding, its hash matches its content (every field is
//! hashed) — and computes its Merkle leaf hash, on any thread; a
//! [`Verifier`] then takes the checked entries in stream order and checks
//! what needs the one before: the position, and the link. The first problem
//! is named at its entry ([`Break`]). The hash itself is [`crate::chain`]'s.

use crate::chain::{GENESIS, Tail, entry_hash};
use crate::merkle::{Hash, leaf_hash};
use bytes::Bytes;
use liaison_proto::v1::LedgerEntry;
use prost::Message;
use std::cell::RefCell;

/// Why a stored entry breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Break {
    #[error("stream message {seq} is not a ledger entry: {reason}")]
    Undecodable { seq: u64, reason: String },
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

impl Break {
    /// The stream sequence of the first bad record.
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
    /// Where an entry is re-encoded to check its encoding is canonical.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// One stored entry checked on its own, before its place in the chain is.
#[derive(Debug, Clone)]
pub struct Checked {
    /// Stream sequence (1-based).
    pub seq: u64,
    /// The entry, or why it is not one (undecodable, not canonical).
    entry: Result<LedgerEntry, Break>,
    /// Whether its hash matches its content.
    content: bool,
    /// Its Merkle leaf hash (of the record).
    pub leaf: Hash,
}

impl Checked {
    /// Checks the stream message `seq` holding `payload` alone: the entry's
    /// byte fields share `payload`, nothing is copied.
    pub fn of(seq: u64, payload: Bytes) -> Self {
        let undecodable = |reason: String| Self {
            seq,
            entry: Err(Break::Undecodable { seq, reason }),
            content: false,
            leaf: GENESIS,
        };
        let entry = match LedgerEntry::decode(payload.clone()) {
            Ok(entry) => entry,
            Err(e) => return undecodable(e.to_string()),
        };
        let canonical = entry.encoded_len() == payload.len()
            && SCRATCH.with_borrow_mut(|scratch| {
                scratch.clear();
                entry.encode_raw(scratch);
                scratch.as_slice() == payload.as_ref()
            });
        if !canonical {
            return undecodable("not in canonical protobuf encoding".into());
        }
        let content = entry_hash(
            entry.index,
            entry.source_seq,
            &entry.prev_hash,
            &entry.record,
        )
        .as_slice()
            == entry.hash;
        Self {
            seq,
            leaf: leaf_hash(&entry.record),
            entry: Ok(entry),
            content,
        }
    }

    /// The entry, if it decoded (whether or not it is intact).
    pub fn entry(&self) -> Option<&LedgerEntry> {
        self.entry.as_ref().ok()
    }
}

/// Checks entries one by one, in stream order.
#[derive(Debug, Default)]
pub struct Verifier {
    tail: Tail,
}

impl Verifier {
    /// Checks the stream message `seq` (1-based) holding `payload`, returning
    /// the entry on success.
    pub fn check(&mut self, seq: u64, payload: &[u8]) -> Result<LedgerEntry, Break> {
        self.link(Checked::of(seq, Bytes::copy_from_slice(payload)))
    }

    /// Places an entry checked alone in the chain (the entries before it
    /// were linked), returning it on success.
    pub fn link(&mut self, checked: Checked) -> Result<LedgerEntry, Break> {
        let seq = checked.seq;
        let entry = checked.entry?;
        let expected = self.tail.next_index;
        if entry.index != expected || seq != expected + 1 {
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
                seq: seq - 1,
                index: entry.index.saturating_sub(1),
            });
        }
        self.tail = Tail::after(&entry).map_err(|reason| Break::Undecodable { seq, reason })?;
        Ok(entry)
    }

    /// Entries verified so far.
    pub fn count(&self) -> u64 {
        self.tail.next_index
    }

    pub fn tail(&self) -> &Tail {
        &self.tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{Tail, entry_hash};

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

    fn verify(entries: &[Vec<u8>]) -> Result<u64, Break> {
        let mut v = Verifier::default();
        for (i, bytes) in entries.iter().enumerate() {
            v.check(i as u64 + 1, bytes)?;
        }
        Ok(v.count())
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
