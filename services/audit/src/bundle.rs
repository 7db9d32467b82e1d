//! Exported ledger bundles: all an auditor needs to verify the ledger offline,
//! without NATS: every entry as stored, every signed checkpoint, and the
//! verifier key. One JSON document; entries are base64 of their stored bytes.

use crate::chain::Checked;
use crate::checkpoint::NoteVerifier;
use crate::inspect::{Inspector, Report};
use crate::verify::Access;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

/// The bundle format this version writes and reads.
pub const FORMAT: &str = "liaison-ledger-bundle/1";

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
    /// Ledger entries in order, base64 of the stored `LedgerEntry` bytes.
    pub entries: Vec<String>,
}

impl Bundle {
    /// Reads the whole ledger and its checkpoints from NATS.
    pub async fn export(
        access: impl Into<Access>,
        origin: &str,
        verifier: &NoteVerifier,
    ) -> Result<Self, String> {
        let access = access.into();
        let checkpoints = crate::verify::checkpoints(access.js()).await?;
        let mut entries = Vec::new();
        crate::verify::read_ledger(&access, |_, payload| {
            entries.push(B64.encode(payload));
            true
        })
        .await?;
        Ok(Self {
            format: FORMAT.to_owned(),
            origin: origin.to_owned(),
            verifier_key: verifier.vkey(),
            checkpoints,
            entries,
        })
    }

    /// Parses a bundle, naming what is wrong with it.
    pub fn parse(json: &str) -> Result<Self, String> {
        let bundle: Self =
            serde_json::from_str(json).map_err(|e| format!("not a ledger bundle: {e}"))?;
        if bundle.format != FORMAT {
            return Err(format!(
                "bundle format {:?}, expected {FORMAT:?}",
                bundle.format
            ));
        }
        Ok(bundle)
    }

    /// Verifies the bundle with `verifier` (the auditor's trusted key).
    pub fn inspect(&self, verifier: &NoteVerifier) -> Report {
        let mut inspector = Inspector::new(self.entries.len() as u64, &self.checkpoints, verifier);
        for (i, entry) in self.entries.iter().enumerate() {
            // Undecodable base64 is checked as an empty (undecodable) entry.
            let bytes = B64.decode(entry).unwrap_or_default();
            inspector.push_checked(Checked::of(i as u64 + 1, bytes.into()));
            if inspector.stopped() {
                break;
            }
        }
        inspector.finish()
    }
}
