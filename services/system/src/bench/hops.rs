//! The raw baseline of the pipeline's path: the same hops as an envelope's,
//! with nothing of Liaison's in them. A sender requests on NATS core; a
//! responder stores the payload in one stream and answers once JetStream has
//! acknowledged it (the gateway's verdict); a relay consumes that stream,
//! stores one copy per recipient in a second one and then acknowledges it
//! (the router's copies); a reader fetches the second stream as an agency
//! reads its inbox (up to 256 a fetch, each acknowledged). Timed at a fixed
//! rate (send → answer, send → read: the baselines of Liaison's send →
//! verdict and send → read) and flat out (the baseline of the pipeline's
//! rate: every copy read).

use super::percentile;
use super::raw::IN_FLIGHT;
use anyhow::{Context as _, Result, anyhow, bail};
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::future::join_all;
use liaison_core::subjects::{
    BENCH_HOP_RELAYED, BENCH_HOP_RELAYED_STREAM, BENCH_HOP_REQUEST, BENCH_HOP_STORED,
    BENCH_HOP_STORED_STREAM,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// p50 and p99 of send → answer and of send → read.
#[derive(Debug, Clone, Copy)]
pub struct HopTimes {
    pub answer: (Duration, Duration),
    pub read: (Duration, Duration),
}

type Arrivals = Arc<Mutex<HashMap<u64, Instant>>>;

/// The hops running on one server: the two streams, the responder, the
/// relay and the reader; stopped and removed on [`Hops::stop`].
struct Hops {
    js: jetstream::Context,
    tasks: JoinSet<Result<()>>,
    /// When each payload's first copy was read.
    arrivals: Arrivals,
    /// Copies read.
    read: Arc<AtomicUsize>,
}

impl Hops {
    async fn start(client: &async_nats::Client, copies: usize) -> Result<Self> {
        let js = jetstream::new(client.clone());
        for (name, subject) in [
            (BENCH_HOP_STORED_STREAM, BENCH_HOP_STORED),
            (BENCH_HOP_RELAYED_STREAM, BENCH_HOP_RELAYED),
        ] {
            let _ = js.delete_stream(name).await;
            js.create_stream(stream::Config {
                name: name.into(),
                subjects: vec![subject.into()],
                ..Default::default()
            })
            .await
            .with_context(|| format!("creating the raw stream {name}"))?;
        }
        let arrivals: Arrivals = Arc::default();
        let read_count = Arc::new(AtomicUsize::new(0));
        let mut tasks = JoinSet::new();
        tasks.spawn(respond(client.clone(), js.clone()).await?);
        tasks.spawn(relay(js.clone(), copies.max(1)).await?);
        tasks.spawn(read(js.clone(), arrivals.clone(), read_count.clone()).await?);
        Ok(Self {
            js,
            tasks,
            arrivals,
            read: read_count,
        })
    }

    /// Waits (up to 60 s) until `copies` have been read.
    async fn all_read(&mut self, copies: usize) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.read.load(Ordering::Relaxed) < copies {
            if let Some(Ok(Err(e))) = self.tasks.try_join_next() {
                return Err(e);
            }
            if Instant::now() > deadline {
                bail!(
                    "the raw reader read {} of {copies} copies",
                    self.read.load(Ordering::Relaxed)
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    async fn stop(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        for name in [BENCH_HOP_STORED_STREAM, BENCH_HOP_RELAYED_STREAM] {
            let _ = self.js.delete_stream(name).await;
        }
    }
}

/// Sends `count` payloads of `size` bytes (at least 8) at `rate` per second
/// through the raw hops on `client`'s server (one copy each) and times them.
pub async fn latency(
    client: &async_nats::Client,
    size: usize,
    rate: u32,
    count: usize,
) -> Result<HopTimes> {
    let mut hops = Hops::start(client, 1).await?;
    let result = async {
        let sent = send_at(client, size, rate, count).await?;
        hops.all_read(count).await?;
        let seen = hops
            .arrivals
            .lock()
            .map_err(|_| anyhow!("the raw arrivals map is poisoned"))?;
        let read: Vec<Duration> = sent
            .iter()
            .filter_map(|(i, started, _)| {
                seen.get(i).map(|at| at.saturating_duration_since(*started))
            })
            .collect();
        let lat = |mut t: Vec<Duration>| (percentile(&mut t, 0.5), percentile(&mut t, 0.99));
        Ok(HopTimes {
            answer: lat(sent.iter().map(|(_, _, took)| *took).collect()),
            read: lat(read),
        })
    }
    .await;
    hops.stop().await;
    result
}

/// Sends `count` payloads of `size` bytes, `IN_FLIGHT` at a time, through
/// the raw hops with `copies` copies each: every copy read, per second.
pub async fn throughput(
    client: &async_nats::Client,
    size: usize,
    count: usize,
    copies: usize,
) -> Result<f64> {
    let mut hops = Hops::start(client, copies).await?;
    let result = async {
        let started = Instant::now();
        let all: Vec<u64> = (0..count as u64).collect();
        for chunk in all.chunks(IN_FLIGHT) {
            for answer in join_all(chunk.iter().map(|i| request(client, size, *i))).await {
                answer?;
            }
        }
        hops.all_read(count * copies.max(1)).await?;
        Ok(count as f64 / started.elapsed().as_secs_f64())
    }
    .await;
    hops.stop().await;
    result
}

/// Answers each request once its payload is stored.
async fn respond(
    client: async_nats::Client,
    js: jetstream::Context,
) -> Result<impl Future<Output = Result<()>>> {
    let mut requests = client
        .subscribe(BENCH_HOP_REQUEST)
        .await
        .context("subscribing the raw responder")?;
    client.flush().await.context("flushing the subscription")?;
    Ok(async move {
        while let Some(request) = requests.next().await {
            let (client, js) = (client.clone(), js.clone());
            tokio::spawn(async move {
                let stored = async { js.publish(BENCH_HOP_STORED, request.payload).await?.await }
                    .await
                    .is_ok();
                if let Some(reply) = request.reply {
                    let answer = if stored { "ok" } else { "failed" };
                    let _ = client
                        .publish(reply, Bytes::from_static(answer.as_bytes()))
                        .await;
                }
            });
        }
        Ok(())
    })
}

/// Stores `copies` copies of each stored message in the second stream
/// (acknowledged together), then acknowledges it.
async fn relay(js: jetstream::Context, copies: usize) -> Result<impl Future<Output = Result<()>>> {
    let consumer = durable(&js, BENCH_HOP_STORED_STREAM, "relay").await?;
    let mut messages = consumer
        .messages()
        .await
        .context("reading the raw stored stream")?;
    Ok(async move {
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| anyhow!("raw relay: {e}"))?;
            let js = js.clone();
            tokio::spawn(async move {
                let relayed = async {
                    let mut acks = Vec::with_capacity(copies);
                    for _ in 0..copies {
                        acks.push(
                            js.publish(BENCH_HOP_RELAYED, message.payload.clone())
                                .await?,
                        );
                    }
                    for ack in acks {
                        ack.await?;
                    }
                    anyhow::Ok(())
                }
                .await;
                if relayed.is_ok() {
                    let _ = message.ack().await;
                }
            });
        }
        Ok(())
    })
}

/// Reads the second stream as an agency reads its inbox, noting arrivals.
async fn read(
    js: jetstream::Context,
    arrivals: Arrivals,
    read: Arc<AtomicUsize>,
) -> Result<impl Future<Output = Result<()>>> {
    let consumer = durable(&js, BENCH_HOP_RELAYED_STREAM, "reader").await?;
    Ok(async move {
        loop {
            let mut batch = consumer
                .fetch()
                .max_messages(256)
                .expires(Duration::from_millis(20))
                .messages()
                .await
                .map_err(|e| anyhow!("raw reader: {e}"))?;
            while let Some(message) = batch.next().await {
                let message = message.map_err(|e| anyhow!("raw reader: {e}"))?;
                let now = Instant::now();
                message
                    .ack()
                    .await
                    .map_err(|e| anyhow!("raw reader: {e}"))?;
                read.fetch_add(1, Ordering::Relaxed);
                let index = index_of(&message.payload);
                arrivals
                    .lock()
                    .map_err(|_| anyhow!("the raw arrivals map is poisoned"))?
                    .entry(index)
                    .or_insert(now);
            }
        }
    })
}

async fn durable(
    js: &jetstream::Context,
    stream: &str,
    name: &str,
) -> Result<consumer::PullConsumer> {
    js.get_stream(stream)
        .await
        .with_context(|| format!("opening the raw stream {stream}"))?
        .create_consumer(consumer::pull::Config {
            durable_name: Some(name.into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .with_context(|| format!("creating the raw consumer {stream}/{name}"))
}

fn index_of(payload: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    if let Some(head) = payload.get(..8) {
        bytes.copy_from_slice(head);
    }
    u64::from_le_bytes(bytes)
}

/// One request of payload `index`: `Ok` once answered that it is stored.
async fn request(client: &async_nats::Client, size: usize, index: u64) -> Result<()> {
    let mut payload = vec![7u8; size.max(8)];
    payload[..8].copy_from_slice(&index.to_le_bytes());
    let answer = client
        .request(BENCH_HOP_REQUEST, payload.into())
        .await
        .context("raw request")?;
    if answer.payload.as_ref() != b"ok" {
        bail!("the raw responder could not store a payload");
    }
    Ok(())
}

/// Sends `count` payloads at `rate`: (index, when sent, time to the answer).
async fn send_at(
    client: &async_nats::Client,
    size: usize,
    rate: u32,
    count: usize,
) -> Result<Vec<(u64, Instant, Duration)>> {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count as u64 {
        tick.tick().await;
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            request(&client, size, i).await?;
            anyhow::Ok((i, started, started.elapsed()))
        }));
    }
    let mut sent = Vec::with_capacity(count);
    for task in tasks {
        sent.push(task.await.context("a raw request task")??);
    }
    Ok(sent)
}
