//! Audit ledger figures, measured against raw baselines in the same run on the
//! same machine (`cargo bench -p liaison-tests --bench ledger`):
//!
//! - verify: chain + Merkle tree + checkpoint over 1,000,000 entries in
//!   memory, against raw SHA-256 over the same bytes;
//! - append: decision records chained into LEDGER by the audit service,
//!   against raw JetStream publishes of the same records on the same server;
//! - online verify and replay of the ledger just written, against a raw read
//!   of the same messages (an ordered consumer doing nothing with them), and
//!   against the way it was read before (an ordered consumer, every check on
//!   the one task).
//!
//! `LIAISON_BENCH_RECORDS` sets the number of records sent through NATS
//! (default 20,000; the ledger then holds twice that: 500,000 gives a
//! replay of a million). `LIAISON_BENCH_SYNC=default` skips the run with
//! `sync_interval = "always"`.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use liaison_audit::chain::{Checked, Tail};
use liaison_audit::checkpoint::{Checkpoint, NoteVerifier};
use liaison_audit::inspect::Inspector;
use liaison_audit::merkle::{CompactRange, leaf_hash};
use liaison_audit::replay::Filter;
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
    let records: Vec<Bytes> = (0..n).map(|i| record(i).into()).collect();

    // What the writer does per record: chain and encode the entry, hash the leaf.
    let started = Instant::now();
    let mut tail = Tail::default();
    let mut tree = CompactRange::new();
    let mut entries = Vec::with_capacity(n as usize);
    for (i, r) in records.iter().enumerate() {
        let (stored, next) = tail.link(r.clone(), i as u64 + 1);
        tail = next;
        tree.push(leaf_hash(r));
        entries.push(stored);
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
    let mut inspector = Inspector::new(n, &notes, &verifier);
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
    let mut inspector = Inspector::new(n, &notes, &verifier);
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

/// Reads all `total` messages of LEDGER with an ordered consumer, doing
/// nothing with them: the baseline of reading.
async fn raw_read(js: &jetstream::Context, total: u64) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let stream = js.get_stream("LEDGER").await?;
    let reader = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
        .await?;
    let mut messages = reader.messages().await?;
    let mut seen = 0;
    while let Some(m) = messages.next().await {
        let _ = m?;
        seen += 1;
        if seen == total {
            break;
        }
    }
    Ok(started.elapsed())
}

/// Verify and replay as before: one ordered consumer, every check and the
/// filter on the one task.
async fn replay_before(
    js: &jetstream::Context,
    verifier: &NoteVerifier,
    filter: &Filter,
    total: u64,
) -> anyhow::Result<(u64, Duration)> {
    let started = Instant::now();
    let notes = liaison_audit::verify::checkpoints(js)
        .await
        .map_err(anyhow::Error::msg)?;
    let stream = js.get_stream("LEDGER").await?;
    let reader = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
        .await?;
    let mut messages = reader.messages().await?;
    let mut inspector = Inspector::new(total, &notes, verifier);
    let mut shown = 0;
    while let Some(m) = messages.next().await {
        let m = m?;
        let seq = m.info().map_err(anyhow::Error::msg)?.stream_sequence;
        if let Some(entry) = inspector.push(seq, &m.payload) {
            let record = AuditRecord::decode(entry.record.as_ref()).unwrap_or_default();
            if filter.matches(entry.index, &record) {
                shown += 1;
            }
        }
        if seq == total {
            break;
        }
    }
    assert!(inspector.finish().intact());
    Ok((shown, started.elapsed()))
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
    system.wait_until_settled(Duration::from_secs(900)).await?;
    let append = started.elapsed();

    // The writer alone: the same number of decisions already waiting in
    // DECISIONS while the audit service is stopped, chained once it starts
    // (after it has read and verified the ledger so far).
    let mut system = system;
    system.stop_audit().await;
    let waiting: Vec<Vec<u8>> = (n..2 * n).map(record).collect();
    decisions(&js, &waiting, "waiting").await?;
    let started = Instant::now();
    system.start_audit().await?;
    let start_up = started.elapsed();
    system.wait_until_settled(Duration::from_secs(900)).await?;
    let writer_alone = started.elapsed();

    let auditor = jetstream::new(system.connect_as(users::AUDITOR).await?);
    let verifier = liaison_audit::signer(&system.config)?.verifier();
    // Twice n records, and the policy set the gateway started with.
    let total = 2 * n + 1;
    let filter = Filter {
        agency: Some("police".into()),
        ..Default::default()
    };
    let read = raw_read(&auditor, total).await?;
    let (shown_before, before) = replay_before(&auditor, &verifier, &filter, total).await?;
    let started = Instant::now();
    let mut shown = 0u64;
    let report = liaison_audit::verify::verify(&auditor, &verifier, |entry, record| {
        if filter.matches(entry.index, record) {
            shown += 1;
        }
    })
    .await?;
    let verify = started.elapsed();
    assert!(
        report.intact() && report.verified == total && shown == 2 * n && shown_before == shown,
        "{report:?}"
    );

    println!();
    let sync = if sync_interval.is_empty() {
        "default (2 min)"
    } else {
        sync_interval
    };
    println!("| over NATS, {n} records, sync_interval {sync} | rate | vs raw |");
    println!("|---|---|---|");
    println!(
        "| raw JetStream publish, 256 in flight (baseline of writing) | {:.0} /s | 1.00 |",
        rate(n, raw)
    );
    let chaining = writer_alone - start_up;
    for (what, took) in [
        (
            "ledger append end to end (DECISIONS → writer → LEDGER)",
            append,
        ),
        ("ledger append, the writer alone", chaining),
        (
            "ledger append, the writer alone with its start-up (verifying the ledger so far)",
            writer_alone,
        ),
    ] {
        println!(
            "| {what} | {:.0} /s | {:.3} |",
            rate(n, took),
            raw.as_secs_f64() / took.as_secs_f64()
        );
    }
    println!(
        "| raw read of the {total} ledger messages, ordered consumer (baseline of reading) | {:.0} /s | 1.00 |",
        rate(total, read)
    );
    for (what, took) in [
        (
            "verify + replay filter, as before (ordered consumer, one task)",
            before,
        ),
        (
            "verify + replay filter (the ledger's reader, one-entry checks on its task)",
            verify,
        ),
    ] {
        println!(
            "| {what} | {:.0} /s ({:.2} s a million) | {:.2} |",
            rate(total, took),
            1e6 / rate(total, took),
            read.as_secs_f64() / took.as_secs_f64()
        );
    }
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
    if std::env::var("LIAISON_BENCH_SYNC").is_ok_and(|s| s == "default") {
        return Ok(());
    }
    // Every write flushed to disk is ~25 times slower: a smaller run.
    runtime.block_on(over_nats(n.min(20_000), "always"))
}
