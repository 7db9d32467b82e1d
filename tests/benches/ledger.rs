//! Audit ledger figures, measured against raw baselines in the same run on the
//! same machine (`cargo bench -p liaison-tests --bench ledger`):
//!
//! - verify: chain + Merkle tree + checkpoint over 1,000,000 entries in
//!   memory, against raw SHA-256 over the same bytes;
//! - append: decision records chained into LEDGER by the audit service,
//!   against raw JetStream publishes of the same records on the same server;
//! - online verify and replay of the ledger just written, against a raw read
//!   of the same messages (blocks of entries; an ordered consumer doing
//!   nothing with them), against a raw read of the baseline's records, one a
//!   message (what one entry a message cost to read, the limit before
//!   blocks), and against an ordered consumer with every check on the one
//!   task.
//!
//! Beside each rate, the CPU a record cost this process (the benchmark and
//! the services, in-process) and nats-server.
//!
//! `LIAISON_BENCH_RECORDS` sets the number of records sent through NATS
//! (default 20,000; the ledger then holds twice that: 500,000 gives a
//! replay of a million). `LIAISON_BENCH_SYNC=default` skips the run with
//! `sync_interval = "always"`, `LIAISON_BENCH_MEMORY=0` the one in memory.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

#[path = "ledger/in_memory.rs"]
mod in_memory;

use async_nats::jetstream::{self, stream};
use futures_util::StreamExt;
use liaison_audit::checkpoint::NoteVerifier;
use liaison_audit::inspect::Inspector;
use liaison_audit::replay::Filter;
use liaison_proto::v1::AuditRecord;
use liaison_runtime::users;
use liaison_tests::bench::{Clock, Took, publish, rate, record};
use prost::Message;
use std::time::Duration;

/// Reads all `total` messages of `name` with an ordered consumer, doing
/// nothing with them: the baseline of reading.
/// `max_batch` messages a pull at most (0: the client's default, 500).
async fn raw_read(
    js: &jetstream::Context,
    name: &str,
    total: u64,
    max_batch: i64,
) -> anyhow::Result<Took> {
    let clock = Clock::start();
    let stream = js.get_stream(name).await?;
    let reader = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            max_batch,
            ..Default::default()
        })
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
    Ok(clock.took())
}

/// Verify and replay with one ordered consumer, every check and the filter
/// on the one task: the ledger's `blocks` messages.
async fn replay_before(
    js: &jetstream::Context,
    verifier: &NoteVerifier,
    filter: &Filter,
    blocks: u64,
) -> anyhow::Result<(u64, Took)> {
    let clock = Clock::start();
    let notes = liaison_audit::verify::checkpoints(js)
        .await
        .map_err(anyhow::Error::msg)?;
    let stream = js.get_stream("LEDGER").await?;
    // Few messages a pull: LEDGER's are blocks of up to 512 KiB (500 of
    // them would overrun the connection).
    let reader = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            max_batch: 16,
            ..Default::default()
        })
        .await?;
    let mut messages = reader.messages().await?;
    let mut inspector = Inspector::new(blocks, &notes, verifier);
    let mut shown = 0;
    while let Some(m) = messages.next().await {
        let m = m?;
        let seq = m.info().map_err(anyhow::Error::msg)?.stream_sequence;
        for entry in inspector.push(seq, &m.payload) {
            let record = AuditRecord::decode(entry.record.as_ref()).unwrap_or_default();
            if filter.matches(entry.index, &record) {
                shown += 1;
            }
        }
        if seq == blocks {
            break;
        }
    }
    assert!(inspector.finish().intact());
    Ok((shown, clock.took()))
}

/// Verify and replay now: `liaison_audit::verify` (the ledger's reader).
async fn replay(
    js: &jetstream::Context,
    verifier: &NoteVerifier,
    filter: &Filter,
    total: u64,
) -> anyhow::Result<(u64, Took)> {
    let clock = Clock::start();
    let mut shown = 0u64;
    let report = liaison_audit::verify::verify(js, verifier, |entry, record| {
        if filter.matches(entry.index, record) {
            shown += 1;
        }
    })
    .await?;
    assert!(report.intact() && report.verified == total, "{report:?}");
    Ok((shown, clock.took()))
}

/// One row: rate, ratio to `base`, CPU per record.
fn row(what: &str, n: u64, took: Took, base: Took) {
    let (client, server) = took.cpu_per(n);
    println!(
        "| {what} | {:.0} /s | {:.3} | {client:.1} µs | {server:.1} µs |",
        rate(n, took.wall),
        base.wall.as_secs_f64() / took.wall.as_secs_f64(),
    );
}

async fn over_nats(n: u64, sync_interval: &str) -> anyhow::Result<()> {
    let mut config = liaison_tests::config();
    config.nats.sync_interval = sync_interval.to_owned();
    let mut system = liaison_tests::start_with(config).await?;
    let js = jetstream::new(system.connect_as(users::INSPECTOR).await?);
    let records: Vec<Vec<u8>> = (0..n).map(record).collect();

    // Baseline: raw JetStream publishes of the same records, 256 in flight.
    js.create_stream(stream::Config {
        name: "BENCH".into(),
        subjects: vec!["bench.raw".into()],
        ..Default::default()
    })
    .await?;
    let clock = Clock::start();
    publish(&js, "bench.raw", &records, None).await?;
    let raw = clock.took();

    // The ledger: the same records as decisions, chained by the audit service.
    let clock = Clock::start();
    publish(&js, "liaison.decisions.bench", &records, Some("bench")).await?;
    system.wait_until_settled(Duration::from_secs(900)).await?;
    let append = clock.took();

    // The writer alone: the same number of decisions already waiting in
    // DECISIONS while the audit service is stopped, chained once it starts
    // (after it has read and verified the ledger so far).
    system.stop_audit().await;
    let waiting: Vec<Vec<u8>> = (n..2 * n).map(record).collect();
    publish(&js, "liaison.decisions.bench", &waiting, Some("waiting")).await?;
    let clock = Clock::start();
    system.start_audit().await?;
    let start_up = clock.took();
    let clock = Clock::start();
    system.wait_until_settled(Duration::from_secs(900)).await?;
    let writer_alone = clock.took();

    // The audit service's own rights (an auditor's granted consumer reads the same way).
    let auditor = jetstream::new(system.connect_as(users::AUDIT).await?);
    let verifier = liaison_audit::signer(&system.config)?.verifier();
    // Twice n records, and the policy set the gateway started with.
    let total = 2 * n + 1;
    let filter = Filter {
        agency: Some("police".into()),
        ..Default::default()
    };
    let blocks = auditor
        .get_stream("LEDGER")
        .await?
        .get_info()
        .await?
        .state
        .last_sequence;
    // Few messages a pull from LEDGER: its messages are blocks of up to
    // 512 KiB, and 500 of them would overrun the connection.
    let read = raw_read(&auditor, "LEDGER", blocks, 16).await?;
    let one_a_message = raw_read(&js, "BENCH", n, 0).await?;
    let (shown_before, before) = replay_before(&auditor, &verifier, &filter, blocks).await?;
    let (shown, now) = replay(&auditor, &verifier, &filter, total).await?;
    assert!(shown == 2 * n && shown_before == shown);

    let sync = if sync_interval.is_empty() {
        "default (2 min)"
    } else {
        sync_interval
    };
    println!(
        "\n| over NATS, {n} records, sync_interval {sync} | rate | vs raw | CPU/record here | nats-server |"
    );
    println!("|---|---|---|---|---|");
    row(
        "raw JetStream publish, 256 in flight (baseline of writing)",
        n,
        raw,
        raw,
    );
    row(
        "ledger append end to end (DECISIONS → writer → LEDGER)",
        n,
        append,
        raw,
    );
    row("ledger append, the writer alone", n, writer_alone, raw);
    let (client, server) = start_up.cpu_per(n);
    println!(
        "| writer start-up: reading and verifying the {} records before | {:.2} s | | {client:.1} µs | {server:.1} µs |",
        n + 1,
        start_up.wall.as_secs_f64()
    );
    row(
        &format!(
            "raw read of the ledger: {total} records in {blocks} messages, ordered consumer (baseline of reading)"
        ),
        total,
        read,
        read,
    );
    row(
        &format!("raw read of {n} records one a message (BENCH), ordered consumer"),
        n,
        one_a_message,
        read,
    );
    row(
        "verify + replay filter, ordered consumer, one task",
        total,
        before,
        read,
    );
    row(
        "verify + replay filter (the ledger's reader)",
        total,
        now,
        read,
    );
    println!(
        "| time to verify and replay a million records: {:.2} s (one task {:.2} s); raw read of the blocks {:.2} s, of one record a message {:.2} s |",
        1e6 / rate(total, now.wall),
        1e6 / rate(total, before.wall),
        1e6 / rate(total, read.wall),
        1e6 / rate(n, one_a_message.wall)
    );
    system.shutdown().await
}

fn main() -> anyhow::Result<()> {
    liaison_runtime::telemetry::init("warn");
    if std::env::var("LIAISON_BENCH_MEMORY").map_or(true, |s| s != "0") {
        in_memory::in_memory(1_000_000);
    }
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
