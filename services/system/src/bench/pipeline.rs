//! The gateway pipeline on the in-process system: envelopes accepted per
//! second (verdicts, 64 in flight) and delivered per second (until every
//! copy is in DELIVERY and every record chained) for one, two and three
//! recipients, each beside the same hops in raw NATS ([`super::hops`]); then,
//! at a fixed rate, send → verdict and send → read by the recipient, beside
//! a raw JetStream publish → acknowledgement and the raw hops at that rate.

use super::envelopes::Kind;
use super::raw::IN_FLIGHT;
use super::{Figure, Row, percentile, settle};
use crate::system::System;
use anyhow::{Context as _, Result, anyhow, bail};
use async_nats::jetstream;
use futures_util::StreamExt as _;
use futures_util::future::join_all;
use liaison_client::AgencyClient;
use liaison_core::AgencyId;
use liaison_proto::v1::verdict::Outcome;
use liaison_runtime::users;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One client per agency, signing with its development key.
pub struct Clients(BTreeMap<AgencyId, Arc<AgencyClient>>);

impl Clients {
    pub async fn connect(system: &System) -> Result<Self> {
        let keys = std::path::Path::new(crate::keys::DEV_KEYS);
        // The agencies whose development keys are at hand: all of the
        // development registry; in a national registry, its partnership.
        let at_hand: Vec<AgencyId> = system
            .registry
            .ids()
            .into_iter()
            .filter(|a| keys.join(format!("{a}.pem")).exists())
            .collect();
        let (clients, _) =
            crate::demo::agencies::connect_these(system, &system.config, keys, &at_hand)
                .await
                .context("connecting the agencies (run from the repository root, for deploy/)")?;
        Ok(Self(clients))
    }

    pub fn get(&self, agency: &str) -> Result<Arc<AgencyClient>> {
        let id = AgencyId::parse(agency)?;
        self.0
            .get(&id)
            .cloned()
            .ok_or_else(|| anyhow!("no client for agency {agency}"))
    }
}

/// Sends each of `ids` as `kind`, `IN_FLIGHT` at a time, each accepted.
pub async fn send_all(client: &AgencyClient, kind: Kind, ids: &[String]) -> Result<()> {
    let token = client
        .token(&kind.author())
        .map_err(|e| anyhow!("signing a token for {}: {e}", kind.sender()))?;
    for chunk in ids.chunks(IN_FLIGHT) {
        let verdicts = join_all(
            chunk
                .iter()
                .map(|id| client.send_raw(kind.encode(id).into(), Some(&token))),
        )
        .await;
        for verdict in verdicts {
            let verdict = verdict.context("sending an envelope to the gateway")?;
            if verdict.outcome != Outcome::Accepted as i32 {
                bail!("the gateway did not accept a bench envelope: {verdict:?}");
            }
        }
    }
    Ok(())
}

/// Rows of accepted and delivered rates, one pair per number of recipients.
pub async fn throughput(
    system: &System,
    clients: &Clients,
    count: usize,
    raw: f64,
) -> Result<Vec<Row>> {
    let js = jetstream::new(system.connect_as(users::INSPECTOR).await?);
    let mut rows = Vec::new();
    for kind in [Kind::PoliceReferral, Kind::SchoolReferral, Kind::Alert] {
        let client = clients.get(kind.sender())?;
        let n = kind.recipients();
        let hops = super::hops::throughput(
            &system.connect_as(users::INSPECTOR).await?,
            super::envelopes::envelope_size(),
            count,
            n,
        )
        .await?;
        let ids: Vec<String> = (0..count).map(|i| format!("bench-{n}-{i:06}")).collect();
        let writes_before = store_writes(&js).await?;
        let started = Instant::now();
        send_all(&client, kind, &ids).await?;
        let accepted = count as f64 / started.elapsed().as_secs_f64();
        settle::settled(&js, Duration::from_secs(600)).await?;
        let delivered = count as f64 / started.elapsed().as_secs_f64();
        let writes_after = store_writes(&js).await?;
        // Per stream, the busiest first: what each envelope cost where.
        let mut by_stream: Vec<(String, f64)> = writes_after
            .iter()
            .map(|(stream, after)| {
                let before = writes_before.get(stream).copied().unwrap_or(0);
                (
                    stream.clone(),
                    after.saturating_sub(before) as f64 / count as f64,
                )
            })
            .filter(|(_, per)| *per >= 0.005)
            .collect();
        by_stream.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let per_envelope: f64 = by_stream.iter().map(|(_, per)| per).sum();
        let where_written = by_stream
            .iter()
            .map(|(stream, per)| format!("{stream} {per:.2}"))
            .collect::<Vec<_>>()
            .join(", ");
        rows.push(Row::new(
            "pipeline",
            format!(
                "raw hops: request → stored → {n} {} relayed → read",
                if n == 1 { "copy" } else { "copies" }
            ),
            Figure::Rate(hops),
            hops / raw,
        ));
        rows.push(Row::new(
            "pipeline",
            format!("gateway: envelopes accepted (verdicts), {n} recipient(s)"),
            Figure::Rate(accepted),
            accepted / raw,
        ));
        rows.push(
            Row::new(
                "pipeline",
                format!(
                    "gateway: every copy in DELIVERY, {n} recipient(s) ({:.2} of the raw hops)",
                    delivered / hops
                ),
                Figure::Rate(delivered),
                delivered / raw,
            )
            .goal("≥ 30 % of raw JetStream publish", delivered / raw >= 0.3),
        );
        // What the store did for them: every JetStream write (EVENTS, records,
        // copies, ledger, the services' KV state), as a rate against raw.
        rows.push(Row::new(
            "pipeline",
            format!(
                "store writes, {n} recipient(s): {per_envelope:.1} JetStream writes per envelope ({where_written})"
            ),
            Figure::Rate(delivered * per_envelope),
            delivered * per_envelope / raw,
        ));
    }
    Ok(rows)
}

/// Every JetStream write so far, per stream, outside the raw baseline's
/// stream: each stream's last sequence (a KV value replaced is a write too).
async fn store_writes(js: &jetstream::Context) -> Result<BTreeMap<String, u64>> {
    let mut streams = js.streams();
    let mut writes = BTreeMap::new();
    while let Some(info) = streams.next().await {
        let info = info.context("listing the streams")?;
        if info.config.name != liaison_core::subjects::BENCH_RAW_STREAM {
            writes.insert(info.config.name.clone(), info.state.last_sequence);
        }
    }
    Ok(writes)
}

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

/// The raw baselines of the latency rows at one rate: a JetStream publish →
/// acknowledgement (p50, p99), and the pipeline's hops in raw NATS.
#[derive(Debug, Clone, Copy)]
pub struct RawLatency {
    pub publish: (Duration, Duration),
    pub hops: super::hops::HopTimes,
}

/// Reads `reader`'s inbox until stopped, noting when each envelope arrived;
/// `drained` is told once the backlog is read.
fn spawn_reader(
    reader: Arc<AgencyClient>,
    arrivals: Arrivals,
    stop: tokio_util::sync::CancellationToken,
    drained: tokio::sync::oneshot::Sender<()>,
) -> tokio::task::JoinHandle<Result<()>> {
    tokio::spawn(async move {
        let mut drained = Some(drained);
        while !stop.is_cancelled() {
            let batch = reader
                .inbox(256, Duration::from_millis(20))
                .await
                .map_err(|e| anyhow!("reading {}'s inbox: {e}", reader.agency()))?;
            let now = Instant::now();
            if batch.is_empty()
                && let Some(tell) = drained.take()
            {
                let _ = tell.send(());
            }
            let mut seen = arrivals
                .lock()
                .map_err(|_| anyhow!("the arrivals map is poisoned"))?;
            for delivery in batch {
                if let Some(envelope) = delivery.envelope {
                    seen.entry(envelope.id).or_insert(now);
                }
            }
        }
        Ok(())
    })
}

/// Send → verdict and send → read latencies of school referrals (read by
/// the police) sent at `rate` per second, beside `raw` (p50, p99).
pub async fn latency(
    clients: &Clients,
    rate: u32,
    count: usize,
    raw: RawLatency,
) -> Result<Vec<Row>> {
    let kind = Kind::SchoolReferral;
    let sender = clients.get(kind.sender())?;
    let arrivals: Arrivals = Arc::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let (tell, drained) = tokio::sync::oneshot::channel();
    let reader = spawn_reader(clients.get("police")?, arrivals.clone(), stop.clone(), tell);
    tokio::time::timeout(Duration::from_secs(600), drained)
        .await
        .map_err(|_| anyhow!("the police inbox was not drained within 600 s"))?
        .map_err(|_| anyhow!("the police inbox reader stopped"))?;
    let token = sender
        .token(&kind.author())
        .map_err(|e| anyhow!("signing a token for {}: {e}", kind.sender()))?;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        tick.tick().await;
        let (sender, token) = (sender.clone(), token.clone());
        let id = format!("lat-{rate}-{i:06}");
        tasks.push(tokio::spawn(async move {
            let payload = kind.encode(&id);
            let started = Instant::now();
            let verdict = sender.send_raw(payload.into(), Some(&token)).await;
            let took = started.elapsed();
            let verdict = verdict.context("sending an envelope to the gateway")?;
            if verdict.outcome != Outcome::Accepted as i32 {
                bail!("the gateway did not accept a bench envelope: {verdict:?}");
            }
            anyhow::Ok((id, started, took))
        }));
    }
    let mut sent = Vec::with_capacity(count);
    for task in tasks {
        sent.push(task.await.context("a send task")??);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut read = Vec::with_capacity(count);
    while read.len() < count {
        read.clear();
        {
            let seen = arrivals
                .lock()
                .map_err(|_| anyhow!("the arrivals map is poisoned"))?;
            for (id, started, _) in &sent {
                if let Some(at) = seen.get(id) {
                    read.push(at.saturating_duration_since(*started));
                }
            }
        }
        if read.len() < count {
            if Instant::now() > deadline {
                bail!("the police read {} of {count} referrals", read.len());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    stop.cancel();
    reader.await.context("the inbox reader")??;
    let verdicts: Vec<Duration> = sent.iter().map(|(_, _, took)| *took).collect();
    let lat = |mut t: Vec<Duration>| (percentile(&mut t, 0.5), percentile(&mut t, 0.99));
    let over = |p99: Duration, base: Duration| p99.as_secs_f64() / base.as_secs_f64().max(1e-9);
    let publish = raw.publish.1;
    let latency = |(p50, p99): (Duration, Duration)| Figure::Latency { p50, p99 };
    // A raw hops row, then Liaison's row of the same path judged against it.
    let pair = |path: &str, hops: (Duration, Duration), name: &str, times: (Duration, Duration)| {
        let ratio = over(times.1, hops.1);
        [
            Row::new(
                "latency",
                format!("raw hops: {path} at {rate}/s"),
                latency(hops),
                over(hops.1, publish),
            ),
            Row::new(
                "latency",
                format!(
                    "{name} at {rate}/s ({:.2}× raw publish p99)",
                    over(times.1, publish)
                ),
                latency(times),
                ratio,
            )
            .goal("p99 ≤ 2× raw hops", ratio <= 2.0),
        ]
    };
    let mut rows = vec![Row::new(
        "latency",
        format!("raw JetStream publish → ack at {rate}/s"),
        latency(raw.publish),
        1.0,
    )];
    rows.extend(pair(
        "request → stored → answer",
        raw.hops.answer,
        "send → verdict",
        lat(verdicts),
    ));
    rows.extend(pair(
        "… → relayed → read",
        raw.hops.read,
        "send → read by the recipient",
        lat(read),
    ));
    Ok(rows)
}
