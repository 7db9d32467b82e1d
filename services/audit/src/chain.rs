//! The hash chain: how a ledger entry's hash is computed and how the next
//! entry is made and encoded. Pure functions over bytes; reading and writing
//! the LEDGER stream live elsewhere.
//!
//! Checking stored entries is [`crate::check`]'s (re-exported here).
//!
//! `hash = SHA-256("liaison.ledger.v1" || index || source_seq || prev_hash || record)`
//! with `index` and `source_seq` as u64 big-endian, `prev_hash` 32 bytes (zeros
//! for the first entry) and `record` the encoded `AuditRecord`. Every field of
//! an entry is covered, and entries must be in canonical protobuf encoding, so
//! any change to the stored bytes is found at the entry changed.
//!
//! Entries are stored in blocks: one LEDGER message is a `LedgerBlock` of
//! consecutive entries ([`Tail::link_blocks`]), at most [`BLOCK_ENTRIES`] and
//! [`BLOCK_BYTES`]. Blocks change nothing in the chain: `index` is the
//! entry's position, and the hash, the Merkle leaves and checkpoints are per
//! entry as before.

use bytes::Bytes;
use liaison_proto::v1::LedgerEntry;
use prost::Message;
use sha2::{Digest, Sha256};

pub use crate::check::{Break, Checked, Verifier};

const DOMAIN: &[u8] = b"liaison.ledger.v1";
/// Most entries in one block (one LEDGER message).
pub const BLOCK_ENTRIES: usize = 1000;
/// Most bytes of one block (well under nats-server's `max_payload`, 1 MiB
/// in Liaison's deployment); a single larger entry gets a block of its own.
pub const BLOCK_BYTES: usize = 512 * 1024;
/// Most bytes of a block holding the rest of a pack of records past
/// [`BLOCK_BYTES`] or [`BLOCK_ENTRIES`] (under nats-server's 1 MiB
/// `max_payload`; a pack is at most 128 records of well under 2 KiB).
pub const HARD_BLOCK_BYTES: usize = 896 * 1024;
/// `prev_hash` of the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// The hash of an entry at `index` after `prev_hash`, holding `record`.
pub fn entry_hash(index: u64, source_seq: u64, prev_hash: &[u8], record: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(index.to_be_bytes());
    h.update(source_seq.to_be_bytes());
    h.update(prev_hash);
    h.update(record);
    h.finalize().into()
}

/// The end of the chain: what the next entry links to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tail {
    /// Index the next entry gets (= number of entries so far).
    pub next_index: u64,
    pub hash: [u8; 32],
    /// DECISIONS sequence of the last entry appended (0 if none).
    pub source_seq: u64,
}

impl Default for Tail {
    fn default() -> Self {
        Self {
            next_index: 0,
            hash: GENESIS,
            source_seq: 0,
        }
    }
}

impl Tail {
    /// The entry that appends `record` (from DECISIONS sequence `source_seq`).
    pub fn append(&self, record: impl Into<Bytes>, source_seq: u64) -> LedgerEntry {
        let record = record.into();
        let hash = entry_hash(self.next_index, source_seq, &self.hash, &record);
        LedgerEntry {
            index: self.next_index,
            prev_hash: Bytes::copy_from_slice(&self.hash),
            record,
            hash: Bytes::copy_from_slice(&hash),
            source_seq,
        }
    }

    /// Appends `record` (sharing its bytes): the stored form of the entry,
    /// encoded once, and the tail after it.
    pub fn link(&self, record: Bytes, source_seq: u64) -> (Bytes, Self) {
        let entry = self.append(record, source_seq);
        let mut stored = bytes::BytesMut::with_capacity(entry.encoded_len());
        entry.encode_raw(&mut stored);
        let mut hash = GENESIS;
        hash.copy_from_slice(&entry.hash);
        let next = Self {
            next_index: self.next_index + 1,
            hash,
            source_seq,
        };
        (stored.freeze(), next)
    }

    /// Chains `records` (each with its DECISIONS sequence) after this tail
    /// into blocks of at most [`BLOCK_ENTRIES`] entries and [`BLOCK_BYTES`]
    /// bytes: the stored form of each block (a `LedgerBlock`, encoded once,
    /// the records' bytes shared) and the tail after its last entry.
    pub fn link_blocks(
        &self,
        records: impl IntoIterator<Item = (Bytes, u64)>,
    ) -> Vec<(Bytes, Self)> {
        let mut blocks = Vec::new();
        let mut tail = self.clone();
        let mut block = bytes::BytesMut::new();
        let mut entries = 0;
        for (record, source_seq) in records {
            let entry = tail.append(record, source_seq);
            let len = prost::encoding::message::encoded_len(1, &entry);
            // A pack's records (one DECISIONS sequence: ADR 0024) stay in
            // one block, so that a block stored is never half a pack, up to
            // a block of HARD_BLOCK_BYTES.
            let full = entries >= BLOCK_ENTRIES || block.len() + len > BLOCK_BYTES;
            let same_pack = entries > 0 && source_seq == tail.source_seq;
            if entries > 0 && full && (!same_pack || block.len() + len > HARD_BLOCK_BYTES) {
                blocks.push((std::mem::take(&mut block).freeze(), tail.clone()));
                entries = 0;
            }
            if block.capacity() == 0 {
                block.reserve(len.max(BLOCK_BYTES.min(64 * 1024)));
            }
            prost::encoding::message::encode(1, &entry, &mut block);
            entries += 1;
            let mut hash = GENESIS;
            hash.copy_from_slice(&entry.hash);
            tail = Self {
                next_index: tail.next_index + 1,
                hash,
                source_seq,
            };
        }
        if entries > 0 {
            blocks.push((block.freeze(), tail));
        }
        blocks
    }

    /// The tail after `entry`.
    pub fn after(entry: &LedgerEntry) -> Result<Self, String> {
        let hash: [u8; 32] = entry.hash[..]
            .try_into()
            .map_err(|_| format!("entry {} has a {}-byte hash", entry.index, entry.hash.len()))?;
        Ok(Self {
            next_index: entry.index + 1,
            hash,
            source_seq: entry.source_seq,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_linked_entry_is_stored_as_its_canonical_encoding() {
        let tail = Tail::default();
        let (stored, next) = tail.link(Bytes::from_static(b"record 0"), 7);
        let entry = tail.append(b"record 0".to_vec(), 7);
        assert_eq!(stored, entry.encode_to_vec());
        assert_eq!(Tail::after(&entry), Ok(next));
    }

    #[test]
    fn blocks_are_canonical_bounded_and_chain_on() {
        use liaison_proto::v1::LedgerBlock;
        let tail = Tail::default();
        let records = (0..2500u64).map(|i| (Bytes::from(format!("record {i}")), i + 1));
        let blocks = tail.link_blocks(records);
        assert_eq!(blocks.len(), 3);
        let mut expected = Tail::default();
        for (stored, after) in &blocks {
            let block = LedgerBlock::decode(stored.clone()).unwrap_or_default();
            assert!(block.entries.len() <= BLOCK_ENTRIES);
            assert_eq!(&block.encode_to_vec(), stored);
            for entry in &block.entries {
                assert_eq!(entry.index, expected.next_index);
                assert_eq!(entry.prev_hash[..], expected.hash);
                expected = Tail::after(entry).unwrap_or_default();
            }
            assert_eq!(&expected, after);
        }
        let big = vec![
            (Bytes::from(vec![7u8; 300 * 1024]), 1),
            (Bytes::from(vec![8u8; 300 * 1024]), 2),
        ];
        let blocks = tail.link_blocks(big);
        assert_eq!(blocks.len(), 2);
        assert!(blocks.iter().all(|(b, _)| b.len() <= BLOCK_BYTES));
        // A pack's records (one DECISIONS sequence) are never split between
        // blocks: a block stored is never half a pack.
        let packed = (0..(BLOCK_ENTRIES as u64 - 2))
            .map(|i| (Bytes::from(format!("record {i}")), i + 1))
            .chain((0..10).map(|i| (Bytes::from(format!("packed {i}")), 5_000)))
            .chain(std::iter::once((Bytes::from_static(b"after"), 5_001)));
        let blocks = tail.link_blocks(packed);
        let sizes: Vec<usize> = blocks
            .iter()
            .map(|(b, _)| LedgerBlock::decode(b.clone()).map_or(0, |b| b.entries.len()))
            .collect();
        assert_eq!(sizes, [BLOCK_ENTRIES + 8, 1]);
    }
}
