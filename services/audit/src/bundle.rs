//! Exported ledger bundles: all an auditor needs to verify the ledger offline,
//! without NATS: every LEDGER message as stored (a block of entries), every
//! signed checkpoint, and the verifier key. One JSON document; blocks are
//! base64 of their stored bytes.
//!
//! Format 2 (`blocks`) since the ledger stores blocks of entries; format 1
//! (`entries`, one stored `LedgerEntry` each, from before) is still read and
//! verified: each of its entries is taken as a block of one, whose encoding
//! is the entry's bytes behind a field key and a length, so it verifies
//! exactly when the entry did and means the same records, proofs and
//! checkpoints.

use crate::chain::Checked;
use crate::checkpoint::NoteVerifier;
use crate::inspect::{Inspector, Report};
use crate::verify::Access;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::{BufMut as _, Bytes, BytesMut};
use liaison_core::error::chain;
use liaison_proto::v1::LedgerBlock;
use prost::Message as _;
use serde::{Deserialize, Serialize};

/// The bundle format this version writes.
pub const FORMAT: &str = "liaison-ledger-bundle/2";
/// The format of bundles exported before blocks (one entry a message); read.
pub const FORMAT_V1: &str = "liaison-ledger-bundle/1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    pub format: String,
    pub origin: String,
    /// The key the checkpoints were signed with, for convenience: an auditor
    /// should check against a key obtained independently.
    pub verifier_key: String,
    /// Signed checkpoint notes, oldest first.
    pub checkpoints: Vec<String>,
    /// LEDGER messages in order, base64 of the stored `LedgerBlock` bytes
    /// (format 2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<String>,
    /// Ledger entries in order, base64 of the stored `LedgerEntry` bytes
    /// (format 1 only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<String>,
}

/// A format 1 entry's bytes as the block of one that holds it.
fn block_of_one(entry: &[u8]) -> Bytes {
    let mut block = BytesMut::with_capacity(entry.len() + 11);
    block.put_u8(0x0a); // field 1, length-delimited
    prost::encoding::encode_varint(entry.len() as u64, &mut block);
    block.put_slice(entry);
    block.freeze()
}

/// One more than the index of the last entry of the last of `stored`.
fn records_in(stored: &[Bytes]) -> u64 {
    stored
        .last()
        .and_then(|b| LedgerBlock::decode(b.clone()).ok())
        .and_then(|b| b.entries.last().map(|e| e.index + 1))
        .unwrap_or(0)
}

impl Bundle {
    /// Reads the whole ledger and its checkpoints from NATS.
    pub async fn export(
        access: impl Into<Access>,
        origin: &str,
        verifier: &NoteVerifier,
    ) -> Result<Self, String> {
        let access = access.into();
        let checkpoints = crate::verify::checkpoints(access.js())
            .await
            .map_err(|e| chain(&e))?;
        let mut blocks = Vec::new();
        crate::verify::read_ledger(&access, |_, payload| {
            blocks.push(B64.encode(payload));
            true
        })
        .await
        .map_err(|e| chain(&e))?;
        Ok(Self {
            format: FORMAT.to_owned(),
            origin: origin.to_owned(),
            verifier_key: verifier.vkey(),
            checkpoints,
            blocks,
            entries: Vec::new(),
        })
    }

    /// Parses a bundle, naming what is wrong with it.
    pub fn parse(json: &str) -> Result<Self, String> {
        let bundle: Self =
            serde_json::from_str(json).map_err(|e| format!("not a ledger bundle: {e}"))?;
        let fits = match bundle.format.as_str() {
            FORMAT => bundle.entries.is_empty(),
            FORMAT_V1 => bundle.blocks.is_empty(),
            _ => {
                return Err(format!(
                    "bundle format {:?}, expected {FORMAT:?} (or {FORMAT_V1:?})",
                    bundle.format
                ));
            }
        };
        if !fits {
            return Err(format!(
                "a {:?} bundle holds `blocks` (format 2) or `entries` (format 1), not the other",
                bundle.format
            ));
        }
        Ok(bundle)
    }

    /// The stored LEDGER messages, in order: the blocks, or each format 1
    /// entry as a block of one. Undecodable base64 is an empty message
    /// (which is not a block).
    pub fn stored(&self) -> Vec<Bytes> {
        if self.format == FORMAT_V1 {
            self.entries
                .iter()
                .map(|e| block_of_one(&B64.decode(e).unwrap_or_default()))
                .collect()
        } else {
            self.blocks
                .iter()
                .map(|b| B64.decode(b).unwrap_or_default().into())
                .collect()
        }
    }

    /// How many records the bundle says it holds: one more than the index
    /// of its last block's last entry (0 if that block does not decode:
    /// verification says why).
    pub fn records(&self) -> u64 {
        records_in(&self.stored())
    }

    /// Verifies the bundle with `verifier` (the auditor's trusted key).
    pub fn inspect(&self, verifier: &NoteVerifier) -> Report {
        let stored = self.stored();
        let mut inspector = Inspector::new(stored.len() as u64, &self.checkpoints, verifier);
        for (i, block) in stored.into_iter().enumerate() {
            inspector.push_checked(Checked::of(i as u64 + 1, block));
            if inspector.stopped() {
                break;
            }
        }
        inspector.finish()
    }
}
