//! The whole system at each registry size of `liaison bench --agencies`:
//! the development partnership alone, then the same partnership with a
//! generated nation registered beside it (`crate::national`; its areas are
//! not the partnership's). At each size, on a fresh nats-server: how long
//! the system takes to be ready, the pipeline's rate (every copy stored in
//! DELIVERY, 1, 2 and 3 recipients), send → verdict and send → read by the
//! recipient at a fixed rate, and each service's resident memory when run
//! as its own process. Only the partnership sends: the rest of the nation
//! is registered and idle, as most agencies are on most days.

use super::envelopes::Kind;
use super::{Figure, Row, envelopes, hops, memory, pipeline, raw, settle};
use crate::national::{self, Options};
use crate::system::{System, UpOptions};
use anyhow::{Context as _, Result, anyhow};
use async_nats::jetstream;
use liaison_runtime::config::Config;
use liaison_runtime::users;
use std::path::Path;
use std::time::{Duration, Instant};

/// One size's figures.
#[derive(Debug, Clone)]
pub struct Measured {
    pub agencies: usize,
    /// `System::start`: nats-server, provisioning and every service.
    pub ready: Duration,
    /// Envelopes per second with every copy stored, per kind: (recipients
    /// in the development registry, recipients at this size, rate).
    pub delivered: Vec<(usize, usize, f64)>,
    /// Send → verdict at the fixed rate: p50, p99.
    pub verdict: (Duration, Duration),
    /// Send → read by the recipient at the fixed rate: p50, p99.
    pub read: (Duration, Duration),
    /// Each service run as its own process: (service, peak, current) bytes.
    pub memory: Vec<(String, u64, u64)>,
    /// Agencies' NATS logins and membership changes taking effect.
    pub logins: super::logins::Logins,
}

/// The development registry, with a generated nation of about `agencies`
/// agencies in all registered beside it (none for 11 or fewer).
pub fn registry_text(root: &Path, agencies: usize) -> Result<String> {
    if agencies <= 11 {
        let dev_path = root.join("deploy/agencies/registry.toml");
        return std::fs::read_to_string(&dev_path)
            .with_context(|| format!("reading {}", dev_path.display()));
    }
    let schools_per_area = 164;
    let areas = ((agencies - 11) / (schools_per_area + 2)).clamp(1, 1_000);
    national::with_partnership(root, &Options::new(areas, schools_per_area))
}

/// One figure per size from several runs of it, in the order sizes first
/// appear: the fastest ready, the lowest p99s (with their p50s), the
/// highest rates, the highest memory.
pub fn best_of(runs: Vec<Measured>) -> Vec<Measured> {
    let mut out: Vec<Measured> = Vec::new();
    for run in runs {
        let Some(best) = out.iter_mut().find(|m| m.agencies == run.agencies) else {
            out.push(run);
            continue;
        };
        best.ready = best.ready.min(run.ready);
        if run.verdict.1 < best.verdict.1 {
            best.verdict = run.verdict;
        }
        if run.read.1 < best.read.1 {
            best.read = run.read;
        }
        if run.logins.nkey.1 < best.logins.nkey.1 {
            best.logins = run.logins;
        }
        for (b, r) in best.delivered.iter_mut().zip(&run.delivered) {
            b.2 = b.2.max(r.2);
        }
        for (b, r) in best.memory.iter_mut().zip(&run.memory) {
            b.1 = b.1.max(r.1);
            b.2 = b.2.max(r.2);
        }
    }
    out
}

/// How many agencies `registry` routes an envelope of `kind` to.
fn recipients(
    policy: &liaison_gateway::policy::Policy,
    registry: &liaison_runtime::registry::Registry,
    kind: Kind,
) -> Result<usize> {
    let sender = liaison_core::AgencyId::parse(kind.sender())?;
    let envelope = kind.envelope("bench-recipients");
    let (_, routes) = policy
        .evaluate_uncached(&sender, &envelope, registry, &Default::default())
        .context("deciding a bench envelope")?;
    Ok(routes.len())
}

/// The row named `prefix…` of `rows`, if there is one.
fn find<'a>(rows: &'a [Row], prefix: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.name.starts_with(prefix))
}

fn latency(row: Option<&Row>) -> (Duration, Duration) {
    match row.map(|r| r.figure) {
        Some(Figure::Latency { p50, p99 }) => (p50, p99),
        _ => (Duration::ZERO, Duration::ZERO),
    }
}

/// Measures the system at each of `sizes`: `envelopes` of each kind
/// through the pipeline, `sends` at `rate` per second for the latencies.
pub async fn run(
    base: &Config,
    root: &Path,
    sizes: &[usize],
    envelopes: usize,
    sends: usize,
    rate: u32,
    progress: impl Fn(&str),
) -> Result<Vec<Measured>> {
    let mut out = Vec::new();
    for &wanted in sizes {
        let dir = tempfile::Builder::new()
            .prefix("liaison-bench-national-")
            .tempdir()
            .map_err(|e| anyhow!("a temporary directory: {e}"))?;
        let registry = dir.path().join("national.toml");
        std::fs::write(&registry, registry_text(root, wanted)?)
            .with_context(|| format!("writing {}", registry.display()))?;
        let mut config = base.clone();
        config.paths.registry = registry;
        let config = envelopes::bench_config(config, dir.path())?;

        progress(&format!("{wanted} agencies: starting the system"));
        let started = Instant::now();
        let system = System::start(
            config.clone(),
            UpOptions {
                inspector: true,
                ..UpOptions::default()
            },
        )
        .await?;
        let ready = started.elapsed();
        let agencies = system.registry.len();
        let operator = system.connect_as(users::INSPECTOR).await?;
        let js = jetstream::new(operator.clone());
        let clients = pipeline::Clients::connect(&system).await?;

        progress(&format!("{agencies} agencies: the pipeline"));
        let rows = pipeline::throughput(&system, &clients, envelopes, 1.0).await?;
        // "gateway: every copy in DELIVERY, N recipient(s) (…)", N as in
        // the development registry; how many this registry routes to.
        let policy =
            liaison_gateway::policy::Policy::load(&config.paths.policies, &system.registry)
                .context("loading the policies")?;
        let mut delivered = Vec::new();
        for r in &rows {
            let Some(n) = r
                .name
                .strip_prefix("gateway: every copy in DELIVERY, ")
                .and_then(|rest| rest.split(' ').next())
                .and_then(|n| n.parse::<usize>().ok())
            else {
                continue;
            };
            let Figure::Rate(rate) = r.figure else {
                continue;
            };
            let here = [Kind::PoliceReferral, Kind::SchoolReferral, Kind::Alert]
                .into_iter()
                .find(|k| k.recipients() == n)
                .map(|kind| recipients(&policy, &system.registry, kind))
                .transpose()?
                .unwrap_or(n);
            delivered.push((n, here, rate));
        }

        progress(&format!("{agencies} agencies: latency at {rate}/s"));
        let size = envelopes::envelope_size();
        let raw_latency = pipeline::RawLatency {
            publish: raw::latency(&js, size, rate, sends).await?,
            hops: hops::latency(&operator, size, rate, sends).await?,
        };
        let rows = pipeline::latency(&clients, rate, sends, raw_latency).await?;
        let verdict = latency(find(&rows, "send → verdict"));
        let read = latency(find(&rows, "send → read by the recipient"));
        settle::settled(&js, Duration::from_secs(600)).await?;
        progress(&format!(
            "{agencies} agencies: logins and membership changes"
        ));
        let logins = super::logins::measure(&system, root, 100).await?;
        drop(clients);
        system.shutdown().await?;

        progress(&format!(
            "{agencies} agencies: the services as separate processes"
        ));
        let memory = memory::measure(&config, dir.path(), envelopes.min(500))
            .await?
            .into_iter()
            .filter_map(|r| match r.figure {
                Figure::Memory { peak, current } => Some((
                    r.name.trim_start_matches("liaison serve ").to_owned(),
                    peak,
                    current,
                )),
                _ => None,
            })
            .collect();
        out.push(Measured {
            agencies,
            ready,
            delivered,
            verdict,
            read,
            memory,
            logins,
        });
    }
    Ok(out)
}
