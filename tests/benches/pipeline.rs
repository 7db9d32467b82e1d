//! The gateway pipeline against raw NATS on the same server in the same run
//! (`cargo bench -p liaison-tests --bench pipeline`): envelopes accepted per
//! second (a school referral, delivered to 2 recipients) against raw
//! JetStream publishes of the same bytes; and verdict
//! latency at a fixed rate against a raw JetStream publish's acknowledgement.
//! `LIAISON_BENCH_ENVELOPES` sets the count (default 5,000).
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use async_nats::jetstream::{self, stream};
use futures_util::future::join_all;
use liaison_proto::v1::verdict::Outcome;
use liaison_runtime::users;
use prost::Message as _;
use std::time::{Duration, Instant};

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn run(n: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let registry =
        std::fs::read_to_string(liaison_tests::repo_root().join("deploy/agencies/registry.toml"))?
            .replace(
                "name = \"Northfield Academy\"",
                "name = \"Northfield Academy\"\nrate_per_sec = 1000000\nburst = 1000000",
            );
    let path = dir.path().join("registry.toml");
    std::fs::write(&path, registry)?;
    let mut config = liaison_tests::config();
    config.paths.registry = path;
    config.nats.sync_interval = String::new();
    let system = liaison_tests::start_with(config).await?;
    let school = liaison_tests::agency(&system, "school-a").await?;
    let token = school.token("school-a-dsl")?;
    let js = jetstream::new(system.connect_as(users::INSPECTOR).await?);
    js.create_stream(stream::Config {
        name: "RAW".into(),
        subjects: vec!["raw".into()],
        ..Default::default()
    })
    .await?;
    let envelopes: Vec<Vec<u8>> = (0..n)
        .map(|i| liaison_tests::referral("school-a", &format!("bench-{i}")).encode_to_vec())
        .collect();

    // Throughput, 64 in flight each way.
    let started = Instant::now();
    for chunk in envelopes.chunks(64) {
        let acks = join_all(chunk.iter().map(|e| js.publish("raw", e.clone().into()))).await;
        for ack in acks {
            ack?.await?;
        }
    }
    let raw = n as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for chunk in envelopes.chunks(64) {
        let verdicts = join_all(
            chunk
                .iter()
                .map(|e| school.send_raw(e.clone().into(), Some(&token))),
        )
        .await;
        for v in verdicts {
            assert_eq!(v?.outcome, Outcome::Accepted as i32);
        }
    }
    let accepted = started.elapsed();
    system.wait_until_settled(Duration::from_secs(600)).await?;
    let settled = started.elapsed();
    let pipeline = n as f64 / accepted.as_secs_f64();
    let routed = n as f64 / settled.as_secs_f64();

    // Latency at a fixed rate (200/s), one at a time.
    let mut raw_latency = Vec::new();
    let mut gateway_latency = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    for i in 0..1000 {
        tick.tick().await;
        let e = liaison_tests::referral("school-a", &format!("lat-{i}")).encode_to_vec();
        let t = Instant::now();
        js.publish("raw", e.clone().into()).await?.await?;
        raw_latency.push(t.elapsed());
        let t = Instant::now();
        let v = school.send_raw(e.into(), Some(&token)).await?;
        gateway_latency.push(t.elapsed());
        assert_eq!(v.outcome, Outcome::Accepted as i32);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (r50, r99) = (
        percentile(raw_latency.clone(), 0.5),
        percentile(raw_latency, 0.99),
    );
    let (g50, g99) = (
        percentile(gateway_latency.clone(), 0.5),
        percentile(gateway_latency, 0.99),
    );
    println!("| {n} envelopes, 64 in flight, default flush | rate | vs raw JetStream publish |");
    println!("|---|---|---|");
    println!("| raw JetStream publish of the same bytes (baseline) | {raw:.0} /s | 1.00 |");
    println!(
        "| gateway: verdicts (checked, decided, stored, recorded) | {pipeline:.0} /s | {:.2} |",
        pipeline / raw
    );
    println!(
        "| gateway: until every copy is delivered (2 recipients) and every record chained | {routed:.0} /s | {:.2} |",
        routed / raw
    );
    println!();
    println!("| latency at 200/s, one at a time | p50 | p99 | p99 vs raw |");
    println!("|---|---|---|---|");
    println!(
        "| raw JetStream publish + ack (baseline) | {:.2} ms | {:.2} ms | 1.00 |",
        ms(r50),
        ms(r99)
    );
    println!(
        "| gateway verdict | {:.2} ms | {:.2} ms | {:.2} |",
        ms(g50),
        ms(g99),
        ms(g99) / ms(r99)
    );
    system.shutdown().await
}

fn main() -> anyhow::Result<()> {
    let n = std::env::var("LIAISON_BENCH_ENVELOPES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    tokio::runtime::Runtime::new()?.block_on(run(n))
}
