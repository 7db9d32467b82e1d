//! `liaison bench`: the evidence issue's figures in one run on one machine,
//! each beside its raw NATS baseline measured on the same nats-server in the
//! same run. Owns the rows of the table ([`Row`]), the goals they are judged
//! against and the order of the measurements; each measurement is its own
//! module: raw NATS ([`raw`]), the gateway pipeline ([`pipeline`]), the audit
//! ledger ([`ledger`]), linkage matching ([`linkage`]) and the services run
//! as separate processes ([`memory`]). Printing the table is the command's
//! (`liaison bench`).

pub mod envelopes;
pub mod hops;
pub mod ledger;
pub mod linkage;
pub mod logins;
pub mod memory;
pub mod national;
pub mod pipeline;
pub mod raw;
pub mod routing;
pub mod sealing;
pub mod settle;

use anyhow::{Result, anyhow};
use async_nats::jetstream;
use liaison_runtime::config::Config;
use liaison_runtime::users;
use std::time::Duration;

use crate::system::{System, UpOptions};

/// How much to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Envelopes through the pipeline (and messages of the raw baselines).
    pub envelopes: usize,
    /// Envelopes sent at each fixed rate for the latency rows.
    pub latency_sends: usize,
    /// Records chained by the ledger writer and verified in memory.
    pub ledger_records: usize,
    /// Referrals matched against the linkage index.
    pub referrals: usize,
    /// Envelopes driven through the services run as separate processes.
    pub process_envelopes: usize,
    /// The fixed rates of the latency rows, per second.
    pub rates: Vec<u32>,
}

impl BenchOptions {
    /// The full run, with `envelopes` through the pipeline.
    pub fn full(envelopes: usize) -> Self {
        Self {
            envelopes,
            latency_sends: 1_000,
            ledger_records: 1_000_000,
            referrals: 100_000,
            process_envelopes: envelopes,
            rates: vec![100, 400],
        }
    }

    /// Small counts, for a test.
    pub fn quick(envelopes: Option<usize>) -> Self {
        Self {
            envelopes: envelopes.unwrap_or(200),
            latency_sends: 40,
            ledger_records: 20_000,
            referrals: 2_000,
            process_envelopes: 100,
            rates: vec![100, 400],
        }
    }
}

/// One measured figure.
#[derive(Debug, Clone, Copy)]
pub enum Figure {
    /// Per second.
    Rate(f64),
    /// p50 and p99.
    Latency { p50: Duration, p99: Duration },
    /// Peak and current resident set, in bytes.
    Memory { peak: u64, current: u64 },
}

/// A goal of the issue and whether the figure meets it.
#[derive(Debug, Clone)]
pub struct Goal {
    pub text: &'static str,
    pub met: bool,
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub section: &'static str,
    pub name: String,
    pub figure: Figure,
    /// The figure over its raw baseline (rates: over the raw JetStream
    /// publish rate; latencies: p99 over the raw p99; memory: peak over
    /// nats-server's peak).
    pub ratio: f64,
    pub goal: Option<Goal>,
}

impl Row {
    pub fn new(section: &'static str, name: impl Into<String>, figure: Figure, ratio: f64) -> Self {
        Self {
            section,
            name: name.into(),
            figure,
            ratio,
            goal: None,
        }
    }

    pub fn goal(mut self, text: &'static str, met: bool) -> Self {
        self.goal = Some(Goal { text, met });
        self
    }
}

/// The p-th percentile (0.0–1.0) of `times` (zero when empty).
pub fn percentile(times: &mut [Duration], p: f64) -> Duration {
    times.sort_unstable();
    let at = ((times.len().saturating_sub(1)) as f64 * p).round() as usize;
    times.get(at).copied().unwrap_or_default()
}

/// Every row, measured in order: raw NATS, the pipeline and the ledger on
/// one in-process system, linkage in memory, then the services as separate
/// processes on a second nats-server. `progress` is told each step.
pub async fn run(
    config: Config,
    options: &BenchOptions,
    progress: impl Fn(&str),
) -> Result<Vec<Row>> {
    let dir = tempfile_dir()?;
    let config = envelopes::bench_config(config, dir.path())?;
    let mut rows = Vec::new();

    progress("starting nats-server and the services in this process");
    let system = System::start(
        config.clone(),
        UpOptions {
            inspector: true,
            ..UpOptions::default()
        },
    )
    .await?;
    let operator = system.connect_as(users::INSPECTOR).await?;
    let js = jetstream::new(operator.clone());
    let size = envelopes::envelope_size();

    progress("raw NATS: core pub/sub and JetStream publish");
    let baseline = raw::throughput(&operator, &js, size, options.envelopes).await?;
    rows.extend(baseline.rows());

    progress("the gateway pipeline");
    let clients = pipeline::Clients::connect(&system).await?;
    rows.extend(
        pipeline::throughput(&system, &clients, options.envelopes, baseline.jetstream).await?,
    );
    for &rate in &options.rates {
        progress(&format!("latency at {rate}/s"));
        let raw_latency = pipeline::RawLatency {
            publish: raw::latency(&js, size, rate, options.latency_sends).await?,
            hops: hops::latency(&operator, size, rate, options.latency_sends).await?,
        };
        rows.extend(pipeline::latency(&clients, rate, options.latency_sends, raw_latency).await?);
    }
    settle::settled(&js, Duration::from_secs(600)).await?;

    progress("the audit ledger");
    rows.extend(ledger::in_memory(
        &config,
        options.ledger_records,
        baseline.jetstream,
    )?);
    rows.extend(
        ledger::over_nats(
            &system,
            &js,
            options.ledger_records.min(20_000),
            baseline.jetstream,
        )
        .await?,
    );
    drop(clients);
    system.shutdown().await?;

    progress("what encryption at rest costs: the pipeline sealed and unsealed");
    rows.extend(sealing::cost(&config, options.envelopes).await?);

    progress("linkage matching");
    rows.extend(linkage::matching(options.referrals));

    progress("the services as separate processes");
    rows.extend(memory::measure(&config, dir.path(), options.process_envelopes).await?);
    Ok(rows)
}

fn tempfile_dir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("liaison-bench-")
        .tempdir()
        .map_err(|e| anyhow!("creating the bench's temporary directory: {e}"))
}
