//! The raw baselines, measured as the operator on the same nats-server as
//! the pipeline: NATS core publish/subscribe (a subscriber counts the
//! messages), JetStream publishes of the same bytes with 64 in flight, and a
//! JetStream publish's acknowledgement latency at a fixed rate. The bench's
//! own subjects and stream are outside Liaison's (`bench.*`, `BENCH_RAW`).

use super::{Figure, Row, percentile};
use anyhow::{Context as _, Result, bail};
use async_nats::jetstream::{self, stream};
use futures_util::StreamExt as _;
use futures_util::future::join_all;
use std::time::{Duration, Instant};

const CORE_SUBJECT: &str = liaison_core::subjects::BENCH_CORE;
const RAW_SUBJECT: &str = liaison_core::subjects::BENCH_RAW;
const RAW_STREAM: &str = liaison_core::subjects::BENCH_RAW_STREAM;
/// Publishes in flight, as the pipeline's senders have envelopes in flight.
pub const IN_FLIGHT: usize = 64;

/// The raw rates every other rate is compared with.
#[derive(Debug, Clone, Copy)]
pub struct Baseline {
    pub core: f64,
    pub jetstream: f64,
    pub size: usize,
    pub count: usize,
}

impl Baseline {
    pub fn rows(&self) -> Vec<Row> {
        vec![
            Row::new(
                "baseline",
                format!("raw NATS core pub/sub, {} B messages", self.size),
                Figure::Rate(self.core),
                self.core / self.jetstream,
            ),
            Row::new(
                "baseline",
                format!("raw JetStream publish, {IN_FLIGHT} in flight"),
                Figure::Rate(self.jetstream),
                1.0,
            ),
        ]
    }
}

/// Creates the raw stream (if missing) and returns the JetStream context.
async fn raw_stream(js: &jetstream::Context) -> Result<()> {
    js.get_or_create_stream(stream::Config {
        name: RAW_STREAM.into(),
        subjects: vec![RAW_SUBJECT.into()],
        ..Default::default()
    })
    .await
    .context("creating the raw JetStream stream")?;
    Ok(())
}

/// Core pub/sub and JetStream publish rates of `count` messages of `size` bytes.
pub async fn throughput(
    client: &async_nats::Client,
    js: &jetstream::Context,
    size: usize,
    count: usize,
) -> Result<Baseline> {
    let payload = bytes::Bytes::from(vec![7u8; size]);
    let mut subscriber = client
        .subscribe(CORE_SUBJECT)
        .await
        .context("subscribing for the core pub/sub baseline")?;
    client.flush().await.context("flushing the subscription")?;
    let started = Instant::now();
    let counter = tokio::spawn(async move {
        let mut seen = 0;
        while seen < count {
            match tokio::time::timeout(Duration::from_secs(10), subscriber.next()).await {
                Ok(Some(_)) => seen += 1,
                _ => break,
            }
        }
        seen
    });
    for _ in 0..count {
        client
            .publish(CORE_SUBJECT, payload.clone())
            .await
            .context("publishing on NATS core")?;
    }
    client
        .flush()
        .await
        .context("flushing the core publishes")?;
    let seen = counter.await.context("the core subscriber")?;
    if seen < count {
        bail!("the core subscriber counted {seen} of {count} messages");
    }
    let core = count as f64 / started.elapsed().as_secs_f64();

    raw_stream(js).await?;
    let started = Instant::now();
    let all: Vec<usize> = (0..count).collect();
    for chunk in all.chunks(IN_FLIGHT) {
        let acks = join_all(
            chunk
                .iter()
                .map(|_| js.publish(RAW_SUBJECT, payload.clone())),
        )
        .await;
        for ack in acks {
            ack.context("raw JetStream publish")?
                .await
                .context("raw JetStream acknowledgement")?;
        }
    }
    let jetstream = count as f64 / started.elapsed().as_secs_f64();
    Ok(Baseline {
        core,
        jetstream,
        size,
        count,
    })
}

/// Publish → acknowledgement times of `count` JetStream publishes, started
/// at `rate` per second whether or not the previous ones were acknowledged.
pub async fn latency(
    js: &jetstream::Context,
    size: usize,
    rate: u32,
    count: usize,
) -> Result<(Duration, Duration)> {
    raw_stream(js).await?;
    let payload = bytes::Bytes::from(vec![7u8; size]);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    let mut tasks = Vec::with_capacity(count);
    for _ in 0..count {
        tick.tick().await;
        let (js, payload) = (js.clone(), payload.clone());
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            js.publish(RAW_SUBJECT, payload)
                .await
                .context("raw JetStream publish")?
                .await
                .context("raw JetStream acknowledgement")?;
            anyhow::Ok(started.elapsed())
        }));
    }
    let mut times = Vec::with_capacity(count);
    for task in tasks {
        times.push(task.await.context("a raw publish task")??);
    }
    Ok((percentile(&mut times, 0.5), percentile(&mut times, 0.99)))
}
