//! Audit ledger figures, measured against raw baselines in the same run on the
//! same machine (`cargo bench -p liaison-tests --bench ledger`):
//!
//! - verify: chain + Merkle tree + checkpoint over 1,000,000 entries in
//!   memory, against raw SHA-256 over the same bytes;
//! - append: decision records chained into LEDGER by the audit service,
//!   against raw JetStream publishes of the same records on the same server;
//! - online verify and replay of the ledger just written.
//!
//! `LIAISON_BENCH_RECORDS` sets the number of records sent through NATS
//! (default 20,000).
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use liaison_audit::bundle::{Bundle, FORMAT};
use liaison_audit::chain::Tail;
use liaison_audit::checkpoint::Checkpoint;
use liaison_audit::merkle::{CompactRange, leaf_hash};
use liaison_kit::users;
use liaison_proto::v1::{AuditRecord, Operation};
use prost::Message;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

fn record(i: u64) -> Vec<u8> {
    AuditRecord {
        record_id: format!("bench-{i}:disclosure:police"),
        operation: Operation::Disclosure as i32,
        agency: "school-a".into(),
        author: "school-a-dsl".into(),
        envelope_id: format!("bench-{i}"),
        recipients: vec!["police".into()],
        purpose: "safeguarding".into(),
        legal_basis: "DPA-2018-s35".into(),
        policy_ids: vec!["ISA-EDU-01/receive".into()],
        time: Some(liaison_kit::time::timestamp_now()),
        ..Default::default()
    }
    .encode_to_vec()
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn in_memory(n: u64) {
    let signer = liaison_audit::signer(&liaison_tests::config()).unwrap();
    let verifier = signer.verifier();
    let records: Vec<Vec<u8>> = (0..n).map(record).collect();

    let started = Instant::now();
    let mut tail = Tail::default();
    let mut tree = CompactRange::new();
    let mut entries = Vec::with_capacity(n as usize);
    for (i, r) in records.iter().enumerate() {
        let entry = tail.append(r.clone(), i as u64 + 1);
        tail = Tail::after(&entry).unwrap();
        tree.push(leaf_hash(r));
        entries.push(entry.encode_to_vec());
    }
    let build = started.elapsed();
    let note = signer.sign(&Checkpoint {
        origin: "liaison.example/ledger".into(),
        size: tree.size(),
        root: tree.root(),
    });

    let started = Instant::now();
    let mut sink = 0u8;
    for e in &entries {
        sink ^= Sha256::digest(e)[0];
    }
    let raw = started.elapsed();

    let bundle = Bundle {
        format: FORMAT.into(),
        origin: "liaison.example/ledger".into(),
        verifier_key: verifier.vkey(),
        checkpoints: vec![note],
        entries: vec![],
    };
    let started = Instant::now();
    let mut inspector = liaison_audit::inspect::Inspector::new(n, &bundle.checkpoints, &verifier);
    for (i, e) in entries.iter().enumerate() {
        inspector.push(i as u64 + 1, e);
    }
    let report = inspector.finish();
    let verify = started.elapsed();
    assert!(report.intact(), "{report:?}");

    println!("| in memory, {n} entries | rate | vs raw SHA-256 of the entries |");
    println!("|---|---|---|");
    println!(
        "| raw SHA-256 (baseline, sink {sink}) | {:.0} /s | 1.00 |",
        rate(n, raw)
    );
    println!(
        "| chain + tree append | {:.0} /s | {:.2} |",
        rate(n, build),
        raw.as_secs_f64() / build.as_secs_f64()
    );
    println!(
        "| verify (decode, canonical check, chain, tree, checkpoint) | {:.0} /s | {:.2} |",
        rate(n, verify),
        raw.as_secs_f64() / verify.as_secs_f64()
    );
}

/// Publishes `records` as decisions, 256 in flight, each with its own message id.
async fn decisions(
    js: &jetstream::Context,
    records: &[Vec<u8>],
    prefix: &str,
) -> anyhow::Result<()> {
    for (i, chunk) in records.chunks(256).enumerate() {
        let mut acks = Vec::with_capacity(chunk.len());
        for (j, r) in chunk.iter().enumerate() {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("{prefix}-{}", i * 256 + j).as_str());
            acks.push(
                js.publish_with_headers("liaison.decisions.bench", headers, r.clone().into())
                    .await?,
            );
        }
        for ack in acks {
            ack.await?;
        }
    }
    Ok(())
}

async fn over_nats(n: u64, sync_interval: &str) -> anyhow::Result<()> {
    let mut config = liaison_tests::config();
    config.nats.sync_interval = sync_interval.to_owned();
    let system = liaison_tests::start_with(config).await?;
    let js = jetstream::new(system.connect_as(users::OPERATOR).await?);
    let records: Vec<Vec<u8>> = (0..n).map(record).collect();

    // Baseline: raw JetStream publishes of the same records, 256 in flight.
    js.create_stream(stream::Config {
        name: "BENCH".into(),
        subjects: vec!["bench.raw".into()],
        ..Default::default()
    })
    .await?;
    let started = Instant::now();
    for chunk in records.chunks(256) {
        let mut acks = Vec::with_capacity(chunk.len());
        for r in chunk {
            acks.push(js.publish("bench.raw", r.clone().into()).await?);
        }
        for ack in acks {
            ack.await?;
        }
    }
    let raw = started.elapsed();

    // The ledger: the same records as decisions, chained by the audit service.
    let started = Instant::now();
    decisions(&js, &records, "bench").await?;
    system.wait_until_settled(Duration::from_secs(600)).await?;
    let append = started.elapsed();

    // The writer alone: the same number of decisions already waiting in
    // DECISIONS while the audit service is stopped, chained once it starts.
    let mut system = system;
    system.stop_audit().await;
    let waiting: Vec<Vec<u8>> = (n..2 * n).map(record).collect();
    decisions(&js, &waiting, "waiting").await?;
    let started = Instant::now();
    system.start_audit().await?;
    system.wait_until_settled(Duration::from_secs(600)).await?;
    let writer_alone = started.elapsed();

    let auditor = jetstream::new(system.connect_as(users::AUDITOR).await?);
    let verifier = liaison_audit::signer(&system.config)?.verifier();
    let started = Instant::now();
    let mut shown = 0u64;
    let filter = liaison_audit::replay::Filter {
        agency: Some("police".into()),
        ..Default::default()
    };
    let report = liaison_audit::verify::verify(&auditor, &verifier, |entry, record| {
        if filter.matches(entry.index, record) {
            shown += 1;
        }
    })
    .await?;
    let verify = started.elapsed();
    // Twice n records, and the policy set the gateway started with.
    assert!(
        report.intact() && report.verified == 2 * n + 1 && shown == 2 * n,
        "{report:?}"
    );
    let read = report.verified;

    println!();
    let sync = if sync_interval.is_empty() {
        "default (2 min)"
    } else {
        sync_interval
    };
    println!("| over NATS, {n} records, sync_interval {sync} | rate | vs raw JetStream publish |");
    println!("|---|---|---|");
    println!(
        "| raw JetStream publish, 256 in flight (baseline) | {:.0} /s | 1.00 |",
        rate(n, raw)
    );
    println!(
        "| ledger append (DECISIONS → audit writer → LEDGER) | {:.0} /s | {:.3} |",
        rate(n, append),
        raw.as_secs_f64() / append.as_secs_f64()
    );
    println!(
        "| ledger append, the writer alone (decisions already waiting, includes its start-up verification) | {:.0} /s | {:.3} |",
        rate(n, writer_alone),
        raw.as_secs_f64() / writer_alone.as_secs_f64()
    );
    println!(
        "| online verify + replay filter of {read} records (ordered consumer, inspect) | {:.0} /s | {:.2} |",
        rate(read, verify),
        rate(read, verify) / rate(n, raw)
    );
    system.shutdown().await
}

fn main() -> anyhow::Result<()> {
    liaison_kit::telemetry::init("warn");
    in_memory(1_000_000);
    let n = std::env::var("LIAISON_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(over_nats(n, ""))?;
    // Every write flushed to disk is ~25 times slower: a smaller run.
    runtime.block_on(over_nats(n.min(20_000), "always"))
}
