//! The ledger's work without NATS: 1,000,000 entries chained, encoded and
//! added to the tree as the writer does it, then verified, against raw
//! SHA-256 over the same bytes.

use bytes::Bytes;
use liaison_audit::chain::{Checked, Tail};
use liaison_audit::checkpoint::Checkpoint;
use liaison_audit::inspect::Inspector;
use liaison_audit::merkle::{CompactRange, leaf_hash};
use liaison_tests::bench::{rate, record};
use sha2::{Digest, Sha256};
use std::time::Instant;

pub fn in_memory(n: u64) {
    let signer = liaison_audit::signer(&liaison_tests::config()).unwrap();
    let verifier = signer.verifier();
    let records: Vec<Bytes> = (0..n).map(|i| record(i).into()).collect();

    // What the writer does per record: chain and encode the entry, hash the leaf.
    let started = Instant::now();
    let mut tail = Tail::default();
    let mut tree = CompactRange::new();
    let mut entries = Vec::with_capacity(n as usize / 1000 + 1);
    for (c, chunk) in records.chunks(1000).enumerate() {
        let blocks = tail.link_blocks(
            chunk
                .iter()
                .enumerate()
                .map(|(i, r)| (r.clone(), (c * 1000 + i) as u64 + 1)),
        );
        for r in chunk {
            tree.push(leaf_hash(r));
        }
        for (stored, next) in blocks {
            tail = next;
            entries.push(stored);
        }
    }
    let build = started.elapsed();
    let notes = vec![signer.sign(&Checkpoint {
        origin: "liaison.example/ledger".into(),
        size: tree.size(),
        root: tree.root(),
    })];

    let started = Instant::now();
    let mut sink = 0u8;
    for e in &entries {
        sink ^= Sha256::digest(e)[0];
    }
    let raw = started.elapsed();

    let started = Instant::now();
    let mut inspector = Inspector::new(entries.len() as u64, &notes, &verifier);
    for (i, e) in entries.iter().enumerate() {
        inspector.push_checked(Checked::of(i as u64 + 1, e.clone()));
    }
    let report = inspector.finish();
    let verify = started.elapsed();
    assert!(report.intact(), "{report:?}");

    // The checks of one entry alone on two threads, then linked in order.
    let started = Instant::now();
    let halves: Vec<Vec<Checked>> = std::thread::scope(|scope| {
        let half = entries.len() / 2;
        let parts = [(0, &entries[..half]), (half, &entries[half..])];
        let handles: Vec<_> = parts
            .into_iter()
            .map(|(from, part)| {
                scope.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(i, e)| Checked::of((from + i) as u64 + 1, e.clone()))
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut inspector = Inspector::new(entries.len() as u64, &notes, &verifier);
    for checked in halves.into_iter().flatten() {
        inspector.push_checked(checked);
    }
    let report = inspector.finish();
    let verify2 = started.elapsed();
    assert!(report.intact(), "{report:?}");

    println!("| in memory, {n} entries | rate | vs raw SHA-256 of the entries |");
    println!("|---|---|---|");
    println!(
        "| raw SHA-256 (baseline, sink {sink}) | {:.0} /s | 1.00 |",
        rate(n, raw)
    );
    for (what, took) in [
        ("chain, encode and tree append (the writer's work)", build),
        (
            "verify (decode, canonical check, chain, tree, checkpoint)",
            verify,
        ),
        ("verify, one-entry checks on 2 threads", verify2),
    ] {
        println!(
            "| {what} | {:.0} /s | {:.2} |",
            rate(n, took),
            raw.as_secs_f64() / took.as_secs_f64()
        );
    }
}
