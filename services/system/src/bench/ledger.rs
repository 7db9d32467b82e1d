//! The audit ledger, with the audit crate's own functions as
//! `cargo bench --bench ledger` uses them: chaining and tree-building in
//! memory ([`Tail`], [`CompactRange`]) and verifying ([`Inspector`]); over
//! NATS, the audit service's writer chaining decision records from
//! DECISIONS into LEDGER, then the online verify and replay filter
//! (`liaison_audit::verify`, `replay::Filter`) over everything it wrote.

use super::{Figure, Row, settle};
use crate::system::System;
use anyhow::{Context as _, Result, bail};
use async_nats::HeaderMap;
use async_nats::jetstream;
use liaison_audit::bundle::{Bundle, FORMAT};
use liaison_audit::chain::Tail;
use liaison_audit::checkpoint::Checkpoint;
use liaison_audit::inspect::Inspector;
use liaison_audit::merkle::{CompactRange, leaf_hash};
use liaison_audit::writer::BATCH;
use liaison_core::subjects;
use liaison_proto::v1::{AuditRecord, Operation};
use liaison_runtime::config::Config;
use liaison_runtime::users;
use prost::Message as _;
use std::time::{Duration, Instant};

fn record(i: usize) -> Vec<u8> {
    AuditRecord {
        record_id: format!("bench-{i}:disclosure:police"),
        operation: Operation::Disclosure as i32,
        agency: "school-a".into(),
        author: "school-a-bench".into(),
        envelope_id: format!("bench-{i}"),
        recipients: vec!["police".into()],
        purpose: "safeguarding".into(),
        legal_basis: "CTSA-2015-s26".into(),
        policy_ids: vec!["ISA-EDU-01/receive".into()],
        time: Some(liaison_core::time::timestamp_now()),
        ..Default::default()
    }
    .encode_to_vec()
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// Chain + tree append and verify of `n` records in memory.
pub fn in_memory(config: &Config, n: usize, raw: f64) -> Result<Vec<Row>> {
    let signer = liaison_audit::signer(config).context("loading the audit checkpoint key")?;
    let verifier = signer.verifier();
    let records: Vec<Vec<u8>> = (0..n).map(record).collect();
    let started = Instant::now();
    let mut tail = Tail::default();
    let mut tree = CompactRange::new();
    let mut blocks = Vec::with_capacity(n / BATCH + 1);
    for (c, chunk) in records.chunks(BATCH).enumerate() {
        let linked = tail.link_blocks(
            chunk
                .iter()
                .enumerate()
                .map(|(i, r)| (r.clone().into(), (c * BATCH + i) as u64 + 1)),
        );
        for r in chunk {
            tree.push(leaf_hash(r));
        }
        for (stored, next) in linked {
            tail = next;
            blocks.push(stored);
        }
    }
    let append = rate(n, started.elapsed());
    let note = signer.sign(&Checkpoint {
        origin: config.audit.origin.clone(),
        size: tree.size(),
        root: tree.root(),
    });
    let bundle = Bundle {
        format: FORMAT.into(),
        origin: config.audit.origin.clone(),
        verifier_key: verifier.vkey(),
        checkpoints: vec![note],
        blocks: vec![],
        entries: vec![],
    };
    let started = Instant::now();
    let mut inspector = Inspector::new(blocks.len() as u64, &bundle.checkpoints, &verifier);
    for (i, b) in blocks.iter().enumerate() {
        inspector.push(i as u64 + 1, b);
    }
    let report = inspector.finish();
    let verify = rate(n, started.elapsed());
    if !report.intact() {
        bail!("the in-memory ledger did not verify: {report:?}");
    }
    Ok(vec![
        Row::new(
            "audit",
            format!("ledger append in memory (chain + tree), {n} records"),
            Figure::Rate(append),
            append / raw,
        ),
        Row::new(
            "audit",
            format!("ledger verify in memory (chain, tree, checkpoint), {n} records"),
            Figure::Rate(verify),
            verify / raw,
        )
        .goal("≥ 1 M records/s", verify >= 1e6),
    ])
}

/// The writer chaining `n` decision records published to DECISIONS (256
/// in flight), then the online verify and replay of the whole ledger.
pub async fn over_nats(
    system: &System,
    js: &jetstream::Context,
    n: usize,
    raw: f64,
) -> Result<Vec<Row>> {
    let records: Vec<Vec<u8>> = (0..n).map(record).collect();
    let subject = subjects::decisions("bench");
    let started = Instant::now();
    for (c, chunk) in records.chunks(256).enumerate() {
        let mut acks = Vec::with_capacity(chunk.len());
        for (j, r) in chunk.iter().enumerate() {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("bench-{}", c * 256 + j).as_str());
            acks.push(
                js.publish_with_headers(subject.clone(), headers, r.clone().into())
                    .await
                    .context("publishing a decision record")?,
            );
        }
        for ack in acks {
            ack.await.context("acknowledgement of a decision record")?;
        }
    }
    settle::settled(js, Duration::from_secs(600)).await?;
    let append = rate(n, started.elapsed());

    // The audit service's own rights (an auditor's granted consumer reads the same way).
    let auditor = jetstream::new(system.connect_as(users::AUDIT).await?);
    let verifier = liaison_audit::signer(&system.config)
        .context("loading the audit checkpoint key")?
        .verifier();
    let filter = liaison_audit::replay::Filter {
        agency: Some("police".into()),
        ..Default::default()
    };
    let started = Instant::now();
    let mut shown = 0u64;
    let report = liaison_audit::verify::verify(&auditor, &verifier, |entry, record| {
        if filter.matches(entry.index, record) {
            shown += 1;
        }
    })
    .await
    .context("verifying the ledger online")?;
    let took = started.elapsed();
    if !report.intact() {
        bail!("the ledger did not verify: {report:?}");
    }
    let read = report.verified as usize;
    let verify = rate(read, took);
    Ok(vec![
        Row::new(
            "audit",
            format!("ledger append by the writer (DECISIONS → LEDGER), {n} records"),
            Figure::Rate(append),
            append / raw,
        ),
        Row::new(
            "audit",
            format!("ledger verify + replay online, {read} records ({shown} shown)"),
            Figure::Rate(verify),
            verify / raw,
        ),
    ])
}
