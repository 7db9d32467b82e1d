//! Receipts (docs/decisions/0023-witnesses.md, part 3): a self-contained
//! proof that a share and what became of it are in the ledger, which an
//! auditor, a court or the ICO checks offline with only the public keys.
//!
//! A receipt holds one C2SP [tlog-proof] per ledger record of the envelope
//! (its collection, each disclosure, any correction or erasure answering
//! it), each with:
//! - `extra`: the record itself (the encoded `AuditRecord`, whose RFC 6962
//!   leaf hash is the Merkle leaf);
//! - `index` and the inclusion proof;
//! - the checkpoint it is proved against, with the log's signature and the
//!   witnesses' cosignatures.
//!
//! Checking it needs only the log's verifier key and, where a quorum of
//! witnesses is wanted, theirs.
//!
//! [tlog-proof]: https://c2sp.org/tlog-proof

use crate::checkpoint::NoteVerifier;
use crate::merkle::{Hash, inclusion_proof, leaf_hash, verify_inclusion};
use crate::witness::CosignatureVerifier;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use liaison_proto::v1::{AuditRecord, Operation};
use prost::Message as _;
use serde::{Deserialize, Serialize};

/// The first line of a C2SP tlog-proof.
const PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";
/// The receipt file's format.
pub const FORMAT: &str = "liaison-receipt/v1";
/// Largest receipt read.
pub const MAX_RECEIPT: usize = 16 * 1024 * 1024;

/// A receipt file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub format: String,
    /// The envelope it is for, as asked (`SENDER/ID` or `ID`).
    pub envelope: String,
    /// One tlog-proof per record.
    pub proofs: Vec<String>,
}

/// Writes a tlog-proof of the record `index` (its bytes `record`) in the
/// tree of `leaves`, against the checkpoint `note` (of `leaves.len()` records).
pub fn proof(index: u64, record: &[u8], leaves: &[Hash], note: &str) -> Result<String, String> {
    let path = inclusion_proof(index, leaves).map_err(|e| e.to_string())?;
    let mut out = format!(
        "{PROOF_HEADER}\nextra {}\nindex {index}\n",
        B64.encode(record)
    );
    for hash in path {
        out.push_str(&B64.encode(hash));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(note);
    Ok(out)
}

/// Refuses what is not an envelope id (`SENDER/ID` or `ID`).
pub fn check_envelope(envelope: &str) -> Result<(), String> {
    let id = envelope.split_once('/').map_or(envelope, |(_, id)| id);
    if id.is_empty() || envelope.len() > 256 || envelope.contains(char::is_whitespace) {
        return Err(format!(
            "{envelope:?} is not an envelope id (SENDER/ID or ID)"
        ));
    }
    Ok(())
}

/// The receipt for `envelope` from the ledger `access` reads (verified as it
/// is read): every record of it, proved against the checkpoint covering them
/// that the most of `witnesses` cosigned (the latest of those); and that
/// checkpoint's size.
pub async fn build(
    access: crate::verify::Access,
    log: &NoteVerifier,
    witnesses: &[CosignatureVerifier],
    envelope: &str,
) -> Result<(Receipt, u64), String> {
    check_envelope(envelope)?;
    let (sender, id) = match envelope.split_once('/') {
        Some((sender, id)) => (Some(sender), id),
        None => (None, envelope),
    };
    let mut leaves = Vec::new();
    let mut records: Vec<(u64, Vec<u8>)> = Vec::new();
    let inspector = crate::verify::scan(access.clone(), log, |entry| {
        leaves.push(leaf_hash(&entry.record));
        if let Some(r) = record_of(entry.record.as_ref()) {
            let ours = (r.envelope_id == id && sender.is_none_or(|s| s == r.agency))
                || (!r.in_reply_to.is_empty()
                    && (r.in_reply_to == envelope || r.in_reply_to == id));
            if ours {
                records.push((entry.index, entry.record.to_vec()));
            }
        }
    })
    .await
    .map_err(|e| e.to_string())?;
    if let Some(finding) = inspector.finish().first_finding {
        return Err(format!("the ledger does not verify: {finding}"));
    }
    let last = records
        .iter()
        .map(|(i, _)| *i)
        .max()
        .ok_or_else(|| format!("no record of {envelope} is in the ledger"))?;
    let notes = crate::verify::checkpoints(access.js())
        .await
        .map_err(|e| e.to_string())?;
    let (size, note) = notes
        .iter()
        .filter_map(|n| log.open(n).ok().map(|cp| (cp.size, n)))
        .filter(|(size, _)| *size > last && *size as usize <= leaves.len())
        .max_by_key(|(size, n)| (witnesses.iter().filter(|w| w.verify(n).is_ok()).count(), *size))
        .ok_or_else(|| {
            format!("record {last} is not in a signed checkpoint yet: `liaison audit checkpoint` signs one")
        })?;
    let covered = &leaves[..size as usize];
    let proofs = records
        .iter()
        .map(|(index, record)| proof(*index, record, covered, note))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((
        Receipt {
            format: FORMAT.into(),
            envelope: envelope.to_owned(),
            proofs,
        },
        size,
    ))
}

/// A ledger record's content, if it decodes.
pub fn record_of(bytes: &[u8]) -> Option<AuditRecord> {
    AuditRecord::decode(bytes).ok()
}

/// One record a receipt proves, as checked.
#[derive(Debug, Clone)]
pub struct Proven {
    pub index: u64,
    pub record: AuditRecord,
    /// The size of the checkpoint it is proved against.
    pub size: u64,
    /// The witnesses whose cosignatures on that checkpoint verify.
    pub witnesses: Vec<String>,
}

/// Checks one tlog-proof: its record's inclusion in the checkpoint, the log's
/// signature, and each witness's cosignature.
pub fn check_proof(
    text: &str,
    log: &NoteVerifier,
    witnesses: &[CosignatureVerifier],
) -> Result<Proven, String> {
    let (head, note) = text
        .split_once("\n\n")
        .ok_or("a proof has no empty line before its checkpoint")?;
    let mut lines = head.split('\n');
    if lines.next() != Some(PROOF_HEADER) {
        return Err(format!("a proof does not start with {PROOF_HEADER}"));
    }
    let record = lines
        .next()
        .and_then(|l| l.strip_prefix("extra "))
        .and_then(|e| B64.decode(e).ok())
        .ok_or("a proof's extra line is not the base64 record")?;
    let index: u64 = lines
        .next()
        .and_then(|l| l.strip_prefix("index "))
        .and_then(|i| i.parse().ok())
        .ok_or("a proof's index line is not `index N`")?;
    let path = lines
        .map(|l| {
            B64.decode(l)
                .ok()
                .and_then(|h| Hash::try_from(h.as_slice()).ok())
                .ok_or_else(|| format!("record {index}: a proof line is not a base64 SHA-256 hash"))
        })
        .collect::<Result<Vec<Hash>, String>>()?;
    let checkpoint = log
        .open(note)
        .map_err(|e| format!("record {index}: its checkpoint: {e}"))?;
    verify_inclusion(
        index,
        checkpoint.size,
        &leaf_hash(&record),
        &path,
        &checkpoint.root,
    )
    .map_err(|e| {
        format!(
            "record {index} is not in the checkpoint of {} records: {e}",
            checkpoint.size
        )
    })?;
    let record = AuditRecord::decode(record.as_slice())
        .map_err(|e| format!("record {index} does not decode: {e}"))?;
    let witnesses = witnesses
        .iter()
        .filter(|w| w.verify(note).is_ok())
        .map(|w| w.name().to_owned())
        .collect();
    Ok(Proven {
        index,
        record,
        size: checkpoint.size,
        witnesses,
    })
}

impl Receipt {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_RECEIPT {
            return Err(format!("a receipt is at most {MAX_RECEIPT} bytes"));
        }
        let receipt: Self = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if receipt.format != FORMAT {
            return Err(format!("format {:?} is not {FORMAT}", receipt.format));
        }
        Ok(receipt)
    }

    /// Checks every proof, and that each is a record of the envelope and
    /// cosigned by `quorum` of `witnesses`.
    pub fn check(
        &self,
        log: &NoteVerifier,
        witnesses: &[CosignatureVerifier],
        quorum: usize,
    ) -> Result<Vec<Proven>, String> {
        if self.proofs.is_empty() {
            return Err("the receipt proves no record".into());
        }
        let id = self
            .envelope
            .split_once('/')
            .map_or(self.envelope.as_str(), |(_, id)| id);
        let mut proven = Vec::new();
        for text in &self.proofs {
            let p = check_proof(text, log, witnesses)?;
            let about = p.record.envelope_id == id || p.record.in_reply_to.ends_with(id);
            if !about {
                return Err(format!(
                    "record {} is about envelope {:?}, not {:?}",
                    p.index, p.record.envelope_id, self.envelope
                ));
            }
            if p.witnesses.len() < quorum {
                let missing: Vec<&str> = witnesses
                    .iter()
                    .map(CosignatureVerifier::name)
                    .filter(|n| !p.witnesses.iter().any(|w| w == n))
                    .collect();
                return Err(format!(
                    "record {}: its checkpoint is cosigned by {} of the {quorum} witnesses required (missing cosignature by {})",
                    p.index,
                    p.witnesses.len(),
                    missing.join(", ")
                ));
            }
            proven.push(p);
        }
        Ok(proven)
    }
}

/// A record in words, for `verify-receipt`.
pub fn describe(p: &Proven) -> String {
    let operation = Operation::try_from(p.record.operation)
        .map(|o| {
            o.as_str_name()
                .trim_start_matches("OPERATION_")
                .to_lowercase()
        })
        .unwrap_or_default();
    format!(
        "record {} ({operation}{}): {} {} {}{}, at {}",
        p.index,
        if p.record.code.is_empty() {
            String::new()
        } else {
            format!(", {}", p.record.code)
        },
        p.record.agency,
        p.record.kind,
        p.record.envelope_id,
        if p.record.recipients.is_empty() {
            String::new()
        } else {
            format!(" to {}", p.record.recipients.join(", "))
        },
        p.record.time.map(|t| t.to_string()).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Checkpoint, NoteSigner};
    use crate::merkle::root;
    use crate::tests::pem;
    use crate::witness::Cosigner;

    #[test]
    fn a_receipt_verifies_offline_and_not_with_any_byte_changed() -> Result<(), String> {
        let log =
            NoteSigner::from_pem("liaison.test/ledger", &pem(7)).map_err(|e| e.to_string())?;
        let witness =
            Cosigner::from_pem("oversight.test/w1", &pem(9)).map_err(|e| e.to_string())?;
        let records: Vec<Vec<u8>> = (0..9)
            .map(|i| {
                AuditRecord {
                    record_id: format!("r{i}"),
                    envelope_id: if i % 3 == 0 {
                        "env-1".into()
                    } else {
                        format!("other-{i}")
                    },
                    agency: "school-a".into(),
                    ..Default::default()
                }
                .encode_to_vec()
            })
            .collect();
        let leaves: Vec<Hash> = records.iter().map(|r| leaf_hash(r)).collect();
        let mut note = log.sign(&Checkpoint {
            origin: "liaison.test/ledger".into(),
            size: 9,
            root: root(&leaves),
        });
        let body = note[..=note.find("\n\n").unwrap_or_default()].to_owned();
        note.push_str(&witness.cosign(&body, 1_700_000_000));
        let receipt = Receipt {
            format: FORMAT.into(),
            envelope: "school-a/env-1".into(),
            proofs: [0u64, 3, 6]
                .iter()
                .map(|&i| proof(i, &records[i as usize], &leaves, &note))
                .collect::<Result<_, _>>()?,
        };
        let text = serde_json::to_string_pretty(&receipt).map_err(|e| e.to_string())?;
        let witnesses = [witness.verifier()];
        let proven = Receipt::parse(&text)?.check(&log.verifier(), &witnesses, 1)?;
        assert_eq!(
            proven.iter().map(|p| p.index).collect::<Vec<_>>(),
            [0, 3, 6]
        );
        // Any single byte of any proof changed: refused.
        let mut refused = 0;
        for (n, proof) in receipt.proofs.iter().enumerate() {
            for at in 0..proof.len() {
                let mut bytes = proof.clone().into_bytes();
                bytes[at] ^= 0x01;
                let Ok(changed) = String::from_utf8(bytes) else {
                    continue;
                };
                let mut altered = receipt.clone();
                altered.proofs[n] = changed;
                if altered.check(&log.verifier(), &witnesses, 1).is_err() {
                    refused += 1;
                } else {
                    return Err(format!("proof {n} byte {at} changed, still verifies"));
                }
            }
        }
        assert!(refused > 1000, "{refused}");
        // Without the witness's cosignature, a quorum of one is not met.
        let bare = Receipt {
            proofs: vec![proof(
                0,
                &records[0],
                &leaves,
                &log.sign(&Checkpoint {
                    origin: "liaison.test/ledger".into(),
                    size: 9,
                    root: root(&leaves),
                }),
            )?],
            ..receipt.clone()
        };
        let missing = bare.check(&log.verifier(), &witnesses, 1);
        assert!(
            missing
                .as_ref()
                .err()
                .is_some_and(|e| e.contains("missing cosignature by oversight.test/w1")),
            "{missing:?}"
        );
        // A record of another envelope is not this receipt's.
        let foreign = Receipt {
            envelope: "school-a/env-2".into(),
            ..receipt
        };
        assert!(foreign.check(&log.verifier(), &witnesses, 1).is_err());
        Ok(())
    }
}
