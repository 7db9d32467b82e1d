//! How the ledger should write and read JetStream, measured side by side on
//! one nats-server in one run (`cargo bench -p liaison-tests --bench
//! jetstream_modes`): pipelined publishes against atomic batch publishes
//! (ADR-50) for writing, an ordered consumer against batched direct gets
//! (ADR-31) for reading. `LIAISON_BENCH_RECORDS` sets the count (default 100,000).
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use async_nats::jetstream::{self, consumer, stream};
use async_nats::{HeaderMap, header};
use futures_util::StreamExt;
use liaison_kit::users;
use std::time::Instant;

const PAYLOAD: usize = 320;

async fn pipelined(js: &jetstream::Context, subject: &str, n: usize) -> f64 {
    let started = Instant::now();
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
    n as f64 / started.elapsed().as_secs_f64()
}

async fn atomic(js: &jetstream::Context, subject: &str, n: usize) -> f64 {
    let client = js.client();
    let payload = bytes::Bytes::from(vec![7u8; PAYLOAD]);
    let started = Instant::now();
    for (b, chunk) in (0..n).collect::<Vec<_>>().chunks(1000).enumerate() {
        let id = format!("b{b}");
        for (k, _) in chunk.iter().enumerate() {
            let mut h = HeaderMap::new();
            h.insert(header::NATS_BATCH_ID, id.as_str());
            h.insert(header::NATS_BATCH_SEQUENCE, (k + 1).to_string().as_str());
            if k + 1 == chunk.len() {
                h.insert(header::NATS_BATCH_COMMIT, header::NATS_BATCH_COMMIT_FINAL);
                js.publish_with_headers(subject.to_owned(), h, payload.clone())
                    .await
                    .unwrap()
                    .await
                    .unwrap();
            } else {
                client
                    .publish_with_headers(subject.to_owned(), h, payload.clone())
                    .await
                    .unwrap();
            }
        }
    }
    n as f64 / started.elapsed().as_secs_f64()
}

async fn ordered(js: &jetstream::Context, name: &str, n: usize) -> f64 {
    let started = Instant::now();
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
    n as f64 / started.elapsed().as_secs_f64()
}

async fn direct_batches(js: &jetstream::Context, name: &str, n: usize, in_flight: usize) -> f64 {
    let client = js.client();
    let started = Instant::now();
    let mut next = 1u64;
    let mut pending = std::collections::VecDeque::new();
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
    n as f64 / started.elapsed().as_secs_f64()
}

async fn run(n: usize, sync: &str) -> anyhow::Result<()> {
    let mut config = liaison_tests::config();
    config.nats.sync_interval = sync.to_owned();
    let system = liaison_tests::start_with(config).await?;
    let js = jetstream::new(system.connect_as(users::OPERATOR).await?);
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
    let atom = atomic(&js, "atom", n).await;
    let ord = ordered(&js, "PIPE", n).await;
    let direct1 = direct_batches(&js, "PIPE", n, 1).await;
    let direct4 = direct_batches(&js, "PIPE", n, 4).await;
    let sync = if sync.is_empty() { "default" } else { sync };
    println!("\n| {n} messages of {PAYLOAD} B, sync_interval {sync} | rate | vs baseline |");
    println!("|---|---|---|");
    println!("| write: pipelined publishes, 1,000 in flight (baseline) | {pipe:.0} /s | 1.00 |");
    println!(
        "| write: atomic batches of 1,000 | {atom:.0} /s | {:.2} |",
        atom / pipe
    );
    println!("| read: ordered consumer (baseline) | {ord:.0} /s | 1.00 |");
    println!(
        "| read: batched direct get, 1 in flight | {direct1:.0} /s | {:.2} |",
        direct1 / ord
    );
    println!(
        "| read: batched direct get, 4 in flight | {direct4:.0} /s | {:.2} |",
        direct4 / ord
    );
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
