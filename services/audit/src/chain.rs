//! The hash chain: how a ledger entry's hash is computed, how the next entry
//! is made, and how a sequence of entries is checked. Pure functions over
//! bytes; reading and writing the LEDGER stream live elsewhere.
//!
//! `hash = SHA-256("liaison.ledger.v1" || index || source_seq || prev_hash || record)`
//! with `index` and `source_seq` as u64 big-endian, `prev_hash` 32 bytes (zeros
//! for the first entry) and `record` the encoded `AuditRecord`. Every field of
//! an entry is covered, and entries must be in canonical protobuf encoding, so
//! any change to the stored bytes is found at the entry changed.

use liaison_proto::v1::LedgerEntry;
use prost::Message;
use sha2::{Digest, Sha256};

const DOMAIN: &[u8] = b"liaison.ledger.v1";
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
    pub fn append(&self, record: Vec<u8>, source_seq: u64) -> LedgerEntry {
        let hash = entry_hash(self.next_index, source_seq, &self.hash, &record);
        LedgerEntry {
            index: self.next_index,
            prev_hash: self.hash.to_vec(),
            record,
            hash: hash.to_vec(),
            source_seq,
        }
    }

    /// The tail after `entry`.
    pub fn after(entry: &LedgerEntry) -> Result<Self, String> {
        let hash: [u8; 32] =
            entry.hash.as_slice().try_into().map_err(|_| {
                format!("entry {} has a {}-byte hash", entry.index, entry.hash.len())
            })?;
        Ok(Self {
            next_index: entry.index + 1,
            hash,
            source_seq: entry.source_seq,
        })
    }
}

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

/// Checks entries one by one, in stream order.
#[derive(Debug, Default)]
pub struct Verifier {
    tail: Tail,
}

impl Verifier {
    /// Checks the stream message `seq` (1-based) holding `payload`, returning
    /// the entry on success.
    pub fn check(&mut self, seq: u64, payload: &[u8]) -> Result<LedgerEntry, Break> {
        let entry = LedgerEntry::decode(payload).map_err(|e| Break::Undecodable {
            seq,
            reason: e.to_string(),
        })?;
        if entry.encoded_len() != payload.len() || entry.encode_to_vec() != payload {
            return Err(Break::Undecodable {
                seq,
                reason: "not in canonical protobuf encoding".into(),
            });
        }
        let expected = self.tail.next_index;
        if entry.index != expected || seq != expected + 1 {
            return Err(Break::Index {
                seq,
                found: entry.index,
                expected,
            });
        }
        if entry_hash(
            entry.index,
            entry.source_seq,
            &entry.prev_hash,
            &entry.record,
        )
        .as_slice()
            != entry.hash
        {
            return Err(Break::Content {
                seq,
                index: entry.index,
            });
        }
        if entry.prev_hash != self.tail.hash {
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
        entry.record = b"record X".to_vec();
        entries[4] = entry.encode_to_vec();
        assert_eq!(verify(&entries), Err(Break::Content { seq: 5, index: 4 }));
    }

    #[test]
    fn an_altered_record_with_a_recomputed_hash_is_named_by_the_next_link() {
        let mut entries = chain(10);
        let mut entry = LedgerEntry::decode(entries[4].as_slice()).unwrap_or_default();
        entry.record = b"record X".to_vec();
        entry.hash = entry_hash(4, entry.source_seq, &entry.prev_hash, &entry.record).to_vec();
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
