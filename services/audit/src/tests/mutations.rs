//! 1,000 random mutations of an exported ledger bundle — bit flips, deleted,
//! reordered, duplicated, forged and truncated entries (and whole blocks),
//! rewritten tails and altered checkpoints: every one is detected, and
//! located at its record (or, for a tail whose chain was recomputed, at the
//! checkpoint interval it hides in; for a block that no longer decodes, at
//! the records it held).
//!
//! The ledger is stored in blocks of several entries (one LEDGER message
//! each), of uneven sizes so that checkpoints fall inside blocks too.

use crate::bundle::{Bundle, FORMAT, FORMAT_V1};
use crate::chain::{Break, Tail};
use crate::checkpoint::{Checkpoint, NoteSigner, NoteVerifier};
use crate::inspect::Finding;
use crate::merkle::{CompactRange, leaf_hash};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use liaison_proto::v1::{AuditRecord, LedgerEntry, Operation};
use prost::Message;
use std::ops::RangeInclusive;

const RECORDS: u64 = 200;
const EVERY: u64 = 50;
const MUTATIONS: usize = 1000;
/// Sizes of the blocks, in turn.
const BLOCK_SIZES: [usize; 7] = [1, 3, 7, 2, 5, 13, 4];

struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn signer() -> NoteSigner {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/audit/dev-checkpoint-key.pem"
    );
    let pem = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{e}"));
    NoteSigner::from_pem("liaison.test/ledger", &pem).unwrap_or_else(|e| panic!("{e}"))
}

fn record(i: u64) -> Vec<u8> {
    AuditRecord {
        record_id: format!("env-{i}:disclosure:police"),
        operation: Operation::Disclosure as i32,
        agency: "school-a".into(),
        envelope_id: format!("env-{i}"),
        recipients: vec!["police".into()],
        ..Default::default()
    }
    .encode_to_vec()
}

/// Entries (stored bytes) of a chain over `records`, with signed checkpoints
/// every `EVERY` records and at the end.
fn build(records: &[Vec<u8>], signer: &NoteSigner) -> (Vec<Vec<u8>>, Vec<String>) {
    let mut tail = Tail::default();
    let mut tree = CompactRange::new();
    let mut entries = Vec::new();
    let mut notes = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let entry = tail.append(record.clone(), i as u64 + 1);
        tail = Tail::after(&entry).unwrap_or_else(|e| panic!("{e}"));
        tree.push(leaf_hash(record));
        entries.push(entry.encode_to_vec());
        if tree.size().is_multiple_of(EVERY) || tree.size() == records.len() as u64 {
            notes.push(signer.sign(&Checkpoint {
                origin: "liaison.test/ledger".into(),
                size: tree.size(),
                root: tree.root(),
            }));
        }
    }
    (entries, notes)
}

/// Entries, each with the number of the block it is stored in.
type Placed = Vec<(usize, Vec<u8>)>;

/// Places `entries` in blocks of [`BLOCK_SIZES`] in turn.
fn place(entries: Vec<Vec<u8>>) -> Placed {
    let mut block = 0;
    let mut left = BLOCK_SIZES[0];
    entries
        .into_iter()
        .map(|e| {
            if left == 0 {
                block += 1;
                left = BLOCK_SIZES[block % BLOCK_SIZES.len()];
            }
            left -= 1;
            (block, e)
        })
        .collect()
}

/// The stored blocks (`LedgerBlock` encodings) of placed entries: each run
/// of entries with the same block number is one block.
fn blocks(placed: &Placed) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut current = None;
    for (block, entry) in placed {
        if current != Some(*block) {
            out.push(Vec::new());
            current = Some(*block);
        }
        if let Some(stored) = out.last_mut() {
            prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, stored);
            prost::encoding::encode_varint(entry.len() as u64, stored);
            stored.extend_from_slice(entry);
        }
    }
    out
}

/// The records block `b` holds.
fn range_of(placed: &Placed, b: usize) -> RangeInclusive<u64> {
    let at: Vec<u64> = placed
        .iter()
        .enumerate()
        .filter(|(_, (block, _))| *block == b)
        .map(|(i, _)| i as u64)
        .collect();
    at[0]..=at[at.len() - 1]
}

fn bundle(blocks: &[Vec<u8>], notes: &[String], verifier: &NoteVerifier) -> Bundle {
    Bundle {
        format: FORMAT.into(),
        origin: "liaison.test/ledger".into(),
        verifier_key: verifier.vkey(),
        checkpoints: notes.to_vec(),
        blocks: blocks.iter().map(|e| B64.encode(e)).collect(),
        entries: vec![],
    }
}

/// The records a finding points at.
fn located(finding: &Finding) -> RangeInclusive<u64> {
    match finding {
        Finding::Chain(Break::Undecodable { first, last, .. }) => *first..=last.unwrap_or(*first),
        Finding::Chain(Break::Index { expected, .. }) => *expected..=*expected,
        Finding::Chain(Break::Content { index, .. })
        | Finding::Chain(Break::Rehashed { index, .. }) => *index..=*index,
        Finding::Rewritten { size } => size.saturating_sub(EVERY)..=size - 1,
        Finding::Truncated { ledger_size, .. } => *ledger_size..=*ledger_size,
        Finding::BadCheckpoint { .. } => u64::MAX..=u64::MAX,
    }
}

#[test]
fn every_mutation_is_detected_and_located() {
    let signer = signer();
    let verifier = signer.verifier();
    let records: Vec<Vec<u8>> = (0..RECORDS).map(record).collect();
    let (entries, notes) = build(&records, &signer);
    let placed = place(entries);
    assert!(
        bundle(&blocks(&placed), &notes, &verifier)
            .inspect(&verifier)
            .intact()
    );

    let mut dice = Dice(0x1ed9_e5ee_d5a1_7e01);
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for m in 0..MUTATIONS {
        let mut e = placed.clone();
        let mut n = notes.clone();
        let i = dice.below(RECORDS);
        let b = e[i as usize].0;
        // Whole blocks (the other half: single entries within their blocks).
        let whole = dice.below(2) == 0;
        let mut flip = None;
        let (kind, expected): (&str, RangeInclusive<u64>) = match m % 8 {
            0 => {
                flip = Some(b);
                ("bit flip", range_of(&e, b))
            }
            1 if whole => {
                let at = range_of(&e, b);
                e.retain(|(block, _)| *block != b);
                ("deleted", *at.start()..=*at.start())
            }
            1 => {
                e.remove(i as usize);
                ("deleted", i..=i)
            }
            2 => {
                let j = (i + 1 + dice.below(RECORDS - 1)) % RECORDS;
                let (x, y) = (e[i as usize].1.clone(), e[j as usize].1.clone());
                e[i as usize].1 = y;
                e[j as usize].1 = x;
                ("reordered", i.min(j)..=i.min(j))
            }
            3 if whole => {
                let at = range_of(&e, b);
                let copies: Vec<(usize, Vec<u8>)> = e
                    .iter()
                    .filter(|(block, _)| *block == b)
                    .map(|(_, entry)| (usize::MAX, entry.clone()))
                    .collect();
                let after = *at.end() as usize + 1;
                e.splice(after..after, copies);
                ("duplicated", at.end() + 1..=at.end() + 1)
            }
            3 => {
                let copy = e[i as usize].clone();
                e.insert(i as usize + 1, copy);
                ("duplicated", i + 1..=i + 1)
            }
            4 => {
                let mut entry = LedgerEntry::decode(e[i as usize].1.as_slice()).unwrap_or_default();
                let mut forged = AuditRecord::decode(entry.record.as_ref()).unwrap_or_default();
                forged.recipients = vec!["retail-bsp".into()];
                entry.record = forged.encode_to_vec().into();
                entry.hash = crate::chain::entry_hash(
                    entry.index,
                    entry.source_seq,
                    &entry.prev_hash,
                    &entry.record,
                )
                .to_vec()
                .into();
                e[i as usize].1 = entry.encode_to_vec();
                // The last record has no successor naming it: its checkpoint does.
                let at = if i == RECORDS - 1 {
                    RECORDS - EVERY..=i
                } else {
                    i..=i
                };
                ("forged", at)
            }
            5 if whole && b > 0 => {
                // Every block from one holding the last quarter's record.
                let b = e[(RECORDS - 1 - dice.below(RECORDS / 4)) as usize].0.max(1);
                let from = *range_of(&e, b).start();
                e.retain(|(block, _)| *block < b);
                ("truncated", from..=from)
            }
            5 => {
                let keep = RECORDS - 1 - dice.below(RECORDS / 4);
                e.truncate(keep as usize);
                ("truncated", keep..=keep)
            }
            6 => {
                // An insider rewrites history from record i and recomputes the chain.
                let mut altered = records.clone();
                altered[i as usize] = record(RECORDS + i);
                // Only the entries are replaced: the forger cannot sign checkpoints.
                let (rewritten, _) = build(&altered, &signer);
                e = place(rewritten);
                let size = (i / EVERY + 1) * EVERY;
                ("rewritten", size - EVERY..=size - 1)
            }
            _ => {
                let c = dice.below(n.len() as u64) as usize;
                let note = n[c].replacen('\n', "\n1", 1);
                n[c] = note;
                ("checkpoint altered", u64::MAX..=u64::MAX)
            }
        };
        let mut stored = blocks(&e);
        if let Some(b) = flip {
            let bytes = &mut stored[b];
            let at = dice.below(bytes.len() as u64) as usize;
            bytes[at] ^= 1 << dice.below(8);
        }
        let report = bundle(&stored, &n, &verifier).inspect(&verifier);
        let finding = report
            .first_finding
            .clone()
            .unwrap_or_else(|| panic!("mutation {m} ({kind} at {i}) was not detected: {report:?}"));
        let at = located(&finding);
        assert!(
            at.start() >= expected.start() && at.end() <= expected.end(),
            "mutation {m} ({kind} at {i}) located at {at:?}, expected within {expected:?}: {finding}"
        );
        *kinds.entry(kind).or_default() += 1;
    }
    assert_eq!(kinds.values().sum::<usize>(), MUTATIONS);
    assert_eq!(kinds.len(), 8, "{kinds:?}");
}

#[test]
fn an_intact_bundle_round_trips_through_json() {
    let signer = signer();
    let verifier = signer.verifier();
    let records: Vec<Vec<u8>> = (0..10).map(record).collect();
    let (entries, notes) = build(&records, &signer);
    let json = serde_json::to_string(&bundle(&blocks(&place(entries.clone())), &notes, &verifier))
        .unwrap_or_default();
    let parsed = Bundle::parse(&json).unwrap_or_else(|e| panic!("{e}"));
    let report = parsed.inspect(&verifier);
    assert!(report.intact(), "{report:?}");
    assert_eq!(
        (
            report.verified,
            report.checkpoints_matched,
            report.latest_checkpoint
        ),
        (10, 1, Some(10))
    );
    assert!(Bundle::parse("{\"format\":\"other\"}").is_err());

    // A bundle exported before blocks (format 1, one entry each) still
    // verifies, to the same records, head and root.
    let v1 = Bundle {
        format: FORMAT_V1.into(),
        blocks: vec![],
        entries: entries.iter().map(|e| B64.encode(e)).collect(),
        ..parsed.clone()
    };
    let json = serde_json::to_string(&v1).unwrap_or_default();
    let old = Bundle::parse(&json)
        .unwrap_or_else(|e| panic!("{e}"))
        .inspect(&verifier);
    assert!(old.intact(), "{old:?}");
    assert_eq!(
        (old.verified, &old.head, &old.root),
        (10, &report.head, &report.root)
    );
    assert_eq!(parsed.records(), 10);
}
