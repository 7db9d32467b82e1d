//! How the ledger should write and read JetStream, measured side by side on
//! one nats-server in one run (`cargo bench -p liaison-tests --bench
//! jetstream_modes`): pipelined publishes against atomic batch publishes
//! (ADR-50), one commit at a time, the ledger writer's way (the next batch
//! sent while the commit before is in flight, committed once it is stored)
//! and four commits in flight (what a writer that did not need each batch
//! stored before the next could reach); for reading, an ordered consumer
//! against plain pulls of 5,000, the ledger's reader (pulls of 5,000 on a
//! task of their own, `liaison_audit::reader`) and batched direct gets
//! (ADR-31). Messages are read back from the atomic stream: like ledger
//! entries, they carry the batch headers. `LIAISON_BENCH_RECORDS` sets the
//! count (default 100,000).
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use async_nats::jetstream::{self, consumer, stream};
use async_nats::{HeaderMap, header};
use futures_util::StreamExt;
use liaison_runtime::users;
use liaison_tests::bench::{Clock, Took, rate};
use std::collections::VecDeque;

const PAYLOAD: usize = 320;

async fn pipelined(js: &jetstream::Context, subject: &str, n: usize) -> Took {
    let clock = Clock::start();
    let payload = bytes::Bytes::from(vec![7u8; PAYLOAD]);
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut acks = Vec::with_capacity(chunk.len());
        for _ in chunk {
            acks.push(
                js.publish(subject.to_owned(), payload.clone())
                    .await
                    .unwrap(),
            );
        }
        for ack in acks {
            ack.await.unwrap();
        }
    }
    clock.took()
}

/// How atomic batches of 1,000 follow one another.
#[derive(Clone, Copy, PartialEq)]
enum Commits {
    /// Each batch sent once the one before is stored.
    OneAtATime,
    /// The ledger writer's way: a batch's messages sent while the commit
    /// before is in flight, its own commit once that one is stored.
    Overlapped,
    /// Up to four commits in flight.
    Four,
}

async fn atomic(js: &jetstream::Context, subject: &str, n: usize, commits: Commits) -> Took {
    let client = js.client();
    let payload = bytes::Bytes::from(vec![7u8; PAYLOAD]);
    let clock = Clock::start();
    let mut in_flight = VecDeque::new();
    for (b, chunk) in (0..n).collect::<Vec<_>>().chunks(1000).enumerate() {
        let id = format!("{}-{b}", commits as u8);
        for k in 0..chunk.len() {
            let mut h = HeaderMap::new();
            h.insert(header::NATS_BATCH_ID, id.as_str());
            h.insert(header::NATS_BATCH_SEQUENCE, (k + 1).to_string().as_str());
            if k + 1 < chunk.len() {
                client
                    .publish_with_headers(subject.to_owned(), h, payload.clone())
                    .await
                    .unwrap();
                continue;
            }
            let limit = if commits == Commits::Four { 4 } else { 1 };
            while in_flight.len() >= limit {
                let ack: jetstream::context::PublishAckFuture = in_flight.pop_front().unwrap();
                ack.await.unwrap();
            }
            h.insert(header::NATS_BATCH_COMMIT, header::NATS_BATCH_COMMIT_FINAL);
            let ack = js
                .publish_with_headers(subject.to_owned(), h, payload.clone())
                .await
                .unwrap();
            if commits == Commits::OneAtATime {
                ack.await.unwrap();
            } else {
                in_flight.push_back(ack);
            }
        }
    }
    for ack in in_flight {
        ack.await.unwrap();
    }
    clock.took()
}

async fn ordered(js: &jetstream::Context, name: &str, n: usize) -> Took {
    let clock = Clock::start();
    let stream = js.get_stream(name).await.unwrap();
    let reader = stream
        .create_consumer(consumer::pull::OrderedConfig::default())
        .await
        .unwrap();
    let mut messages = reader.messages().await.unwrap();
    let mut seen = 0;
    while let Some(m) = messages.next().await {
        let _ = m.unwrap();
        seen += 1;
        if seen == n {
            break;
        }
    }
    clock.took()
}

/// An ephemeral pull consumer without acknowledgements, 5,000 a pull.
async fn pulls(js: &jetstream::Context, name: &str, n: usize) -> Took {
    let clock = Clock::start();
    let stream = js.get_stream(name).await.unwrap();
    let reader = stream
        .create_consumer(consumer::pull::Config {
            ack_policy: consumer::AckPolicy::None,
            memory_storage: true,
            inactive_threshold: std::time::Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = reader
        .stream()
        .max_messages_per_batch(5000)
        .messages()
        .await
        .unwrap();
    let mut seen = 0;
    while let Some(m) = messages.next().await {
        let _ = m.unwrap();
        seen += 1;
        if seen == n {
            break;
        }
    }
    clock.took()
}

/// The ledger's reader (pulls of 5,000 on a task of its own).
async fn ledger_reader(js: &jetstream::Context, name: &str, n: usize) -> Took {
    let clock = Clock::start();
    let stream = js.get_stream(name).await.unwrap();
    let mut seen = 0;
    liaison_audit::reader::read_range(&stream, 1, n as u64, |_, _| {
        seen += 1;
        true
    })
    .await
    .unwrap();
    assert_eq!(seen, n);
    clock.took()
}

async fn direct_batches(js: &jetstream::Context, name: &str, n: usize, in_flight: usize) -> Took {
    let client = js.client();
    let clock = Clock::start();
    let mut next = 1u64;
    let mut pending = VecDeque::new();
    let mut seen = 0;
    while seen < n {
        while pending.len() < in_flight && next <= n as u64 {
            let inbox = client.new_inbox();
            let sub = client.subscribe(inbox.clone()).await.unwrap();
            let req = serde_json::json!({"seq": next, "batch": 1000});
            client
                .publish_with_reply(
                    format!("$JS.API.DIRECT.GET.{name}"),
                    inbox,
                    req.to_string().into(),
                )
                .await
                .unwrap();
            pending.push_back(sub);
            next += 1000;
        }
        let mut sub = pending.pop_front().unwrap();
        while let Some(m) = sub.next().await {
            if m.payload.is_empty() {
                break;
            }
            seen += 1;
        }
    }
    clock.took()
}

async fn run(n: usize, sync: &str) -> anyhow::Result<()> {
    let mut config = liaison_tests::config();
    config.nats.sync_interval = sync.to_owned();
    let system = liaison_tests::start_with(config).await?;
    let js = jetstream::new(system.connect_as(users::INSPECTOR).await?);
    for name in ["PIPE", "ATOM"] {
        js.create_stream(stream::Config {
            name: name.into(),
            subjects: vec![name.to_lowercase()],
            allow_direct: true,
            allow_atomic_publish: name == "ATOM",
            ..Default::default()
        })
        .await?;
    }
    let pipe = pipelined(&js, "pipe", n).await;
    let one = atomic(&js, "atom", n, Commits::OneAtATime).await;
    let overlapped = atomic(&js, "atom", n, Commits::Overlapped).await;
    let four = atomic(&js, "atom", n, Commits::Four).await;
    // Read what the first atomic run wrote, every way twice, interleaved
    // (the machine is shared: compare within a round).
    let mut reads = Vec::new();
    for _ in 0..2 {
        reads.push([
            ordered(&js, "ATOM", n).await,
            pulls(&js, "ATOM", n).await,
            ledger_reader(&js, "ATOM", n).await,
            direct_batches(&js, "ATOM", n, 1).await,
            direct_batches(&js, "ATOM", n, 4).await,
        ]);
    }
    let sync = if sync.is_empty() { "default" } else { sync };
    let row = |what: &str, took: Took, base: Took| {
        let (client, server) = took.cpu_per(n as u64);
        println!(
            "| {what} | {:.0} /s | {:.2} | {client:.1} µs | {server:.1} µs |",
            rate(n as u64, took.wall),
            base.wall.as_secs_f64() / took.wall.as_secs_f64()
        );
    };
    println!(
        "\n| {n} messages of {PAYLOAD} B, sync_interval {sync} | rate | vs baseline | CPU/message here | nats-server |"
    );
    println!("|---|---|---|---|---|");
    row(
        "write: pipelined publishes, 1,000 in flight (baseline)",
        pipe,
        pipe,
    );
    row("write: atomic batches of 1,000, one at a time", one, pipe);
    row(
        "write: atomic batches of 1,000, the writer's way",
        overlapped,
        pipe,
    );
    row(
        "write: atomic batches of 1,000, four commits in flight",
        four,
        pipe,
    );
    for (round, r) in reads.iter().enumerate() {
        row(
            &format!("read, round {round}: ordered consumer (baseline)"),
            r[0],
            r[0],
        );
        for (what, took) in [
            ("pulls of 5,000", r[1]),
            ("the ledger's reader", r[2]),
            ("batched direct get, 1 in flight", r[3]),
            ("batched direct get, 4 in flight", r[4]),
        ] {
            row(&format!("read, round {round}: {what}"), took, r[0]);
        }
    }
    system.shutdown().await
}

fn main() -> anyhow::Result<()> {
    let n = std::env::var("LIAISON_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run(n, ""))?;
    runtime.block_on(run(n.min(20_000), "always"))
}
