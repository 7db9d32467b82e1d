//! `liaison bench`: starts its own nats-server, measures (`liaison_system::bench`)
//! and prints one table: each figure, its ratio to the raw baseline of the
//! same run, and the goal with met / not met.

use super::Cli;
use anyhow::Result;
use clap::Args;
use liaison_system::bench::{self, BenchOptions, Figure, Row};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Small counts (a few seconds), e.g. for a test; the figures are then rough.
    #[arg(long)]
    quick: bool,
    /// Envelopes of each kind through the pipeline [default: 5000; --quick: 200].
    #[arg(long, value_parser = clap::value_parser!(u64).range(10..=1_000_000))]
    envelopes: Option<u64>,
    /// Instead: the gateway's routing decision at each registry size (8 is
    /// the development registry; larger sizes are generated national
    /// registries), e.g. `--agencies 8,2000,25000`, with the ratio to the
    /// first size.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u64).range(1..=100_000))]
    agencies: Vec<u64>,
    /// JetStream's flush: `shipped` (the configuration's nats.sync_interval,
    /// `always` in deploy/config/liaison.toml: every write on disk before it
    /// is acknowledged) or `default` (nats-server's own, every 2 minutes).
    #[arg(long, value_enum, default_value = "shipped")]
    flush: Flush,
    /// Also write every row to FILE as JSON (section, measurement, figure,
    /// unit, ratio, goal, met), to compare runs and machines.
    #[arg(long, value_name = "FILE")]
    json: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Flush {
    Shipped,
    Default,
}

impl BenchArgs {
    /// The configuration with the flush asked for, and its name.
    fn config(&self, cli: &Cli) -> Result<(liaison_runtime::config::Config, String)> {
        let mut config = cli.load_config()?;
        match self.flush {
            Flush::Default => config.nats.sync_interval = "default".into(),
            Flush::Shipped if config.nats.sync_interval.is_empty() => {
                config.nats.sync_interval = "always".into();
            }
            Flush::Shipped => {}
        }
        let name = match config.nats.sync_interval.as_str() {
            "default" => "nats-server's default JetStream flush".to_owned(),
            other => format!("JetStream sync_interval = {other} (shipped)"),
        };
        Ok((config, name))
    }
}

/// One row as JSON.
fn json_row(row: &Row) -> serde_json::Value {
    let (figure, unit) = match row.figure {
        Figure::Rate(r) => (serde_json::json!(r), "per second"),
        Figure::Latency { p50, p99 } => (
            serde_json::json!({"p50": p50.as_secs_f64() * 1e6, "p99": p99.as_secs_f64() * 1e6}),
            "microseconds",
        ),
        Figure::Memory { peak, current } => (
            serde_json::json!({"peak": peak, "current": current}),
            "bytes",
        ),
    };
    serde_json::json!({
        "section": row.section,
        "measurement": row.name,
        "figure": figure,
        "unit": unit,
        "ratio": row.ratio,
        "goal": row.goal.as_ref().map(|g| g.text),
        "met": row.goal.as_ref().map(|g| g.met),
    })
}

fn ms(d: Duration) -> String {
    format!("{d:.2?}")
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn figure(f: &Figure) -> String {
    match f {
        Figure::Rate(r) => format!("{r:.0} /s"),
        Figure::Latency { p50, p99 } => format!("p50 {} / p99 {}", ms(*p50), ms(*p99)),
        Figure::Memory { peak, current } => {
            format!("peak {} / now {}", mib(*peak), mib(*current))
        }
    }
}

fn print(rows: &[Row]) {
    println!("| section | measurement | figure | vs raw | goal | met |");
    println!("|---|---|---|---|---|---|");
    for row in rows {
        let (goal, met) = match &row.goal {
            Some(g) => (g.text, if g.met { "met" } else { "not met" }),
            None => ("", ""),
        };
        println!(
            "| {} | {} | {} | {:.2} | {goal} | {met} |",
            row.section,
            row.name,
            figure(&row.figure),
            row.ratio
        );
    }
}

/// `--agencies`: the routing decision at each registry size, then the whole
/// system at each size.
async fn routing(cli: &Cli, args: &BenchArgs) -> Result<ExitCode> {
    let sizes: Vec<usize> = args.agencies.iter().map(|&n| n as usize).collect();
    let decisions = args
        .envelopes
        .map_or(if args.quick { 200 } else { 2_000 }, |n| n as usize);
    println!(
        "liaison bench --agencies: {decisions} decisions of each kind per size, uncached, one thread"
    );
    let root = std::env::current_dir()?;
    let sizes = bench::routing::run(&root, &sizes, decisions, |step| println!("  … {step}"))?;
    let Some(first) = sizes.first() else {
        return Ok(ExitCode::SUCCESS);
    };
    println!();
    println!(
        "| agencies | decision | recipients | p50 | p99 | per second | p99 vs {} | rate vs {} |",
        first.agencies, first.agencies
    );
    println!("|---|---|---|---|---|---|---|---|");
    for size in &sizes {
        for (i, (kind, recipients, p50, p99, rate)) in size.decisions.iter().enumerate() {
            let base = first.decisions.get(i);
            let p99_ratio = base.map_or(0.0, |b| p99.as_secs_f64() / b.3.as_secs_f64());
            let rate_ratio = base.map_or(0.0, |b| rate / b.4);
            println!(
                "| {} | {kind} | {recipients} | {} | {} | {rate:.0} | {p99_ratio:.2} | {rate_ratio:.2} |",
                size.agencies,
                ms(*p50),
                ms(*p99)
            );
        }
    }
    println!();
    println!(
        "| agencies | load registry + policies | memory: registry | memory: policies | referral asking every agency (p50) |"
    );
    println!("|---|---|---|---|---|");
    for size in &sizes {
        println!(
            "| {} | {} | {} | {} | {} |",
            size.agencies,
            ms(size.load),
            mib(size.memory.0),
            mib(size.memory.1),
            ms(size.every_agency_p50)
        );
    }
    national(
        cli,
        args,
        &root,
        &sizes.iter().map(|s| s.agencies).collect::<Vec<_>>(),
    )
    .await
}

/// The whole system at each size (`bench::national`).
async fn national(
    cli: &Cli,
    args: &BenchArgs,
    root: &std::path::Path,
    sizes: &[usize],
) -> Result<ExitCode> {
    const GOAL_RATIO: f64 = 1.2;
    const GOAL_RSS: u64 = 128 * 1024 * 1024;
    let (config, flush) = args.config(cli)?;
    let (envelopes, sends, rate) = if args.quick {
        (args.envelopes.map_or(100, |n| n as usize), 40, 100)
    } else {
        (args.envelopes.map_or(2_000, |n| n as usize), 500, 100)
    };
    println!(
        "\nThe whole system at each size: the development partnership sends, the rest of the nation is \
         registered; {envelopes} envelopes of each kind, {sends} sends at {rate}/s, {flush}"
    );
    // Each size twice, in mirrored order (A B C C B A), keeping each size's
    // better figures and its higher memory: this machine drifts over a run
    // (the same size measured first and last differs by up to 25 %), and
    // the mirror cancels a drift that is steady.
    let order: Vec<usize> = sizes.iter().chain(sizes.iter().rev()).copied().collect();
    let runs = bench::national::run(&config, root, &order, envelopes, sends, rate, |step| {
        println!("  … {step}")
    })
    .await?;
    let measured = bench::national::best_of(runs);
    let Some(first) = measured.first() else {
        return Ok(ExitCode::SUCCESS);
    };
    println!();
    println!(
        "| agencies | ready | verdict p50 / p99 at {rate}/s | read p50 / p99 | delivered /s (recipients here) | \
         verdict p99 vs {0} | slower per copy vs {0} | goal ≤ {GOAL_RATIO}× | met |",
        first.agencies
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for m in &measured {
        let p99_ratio = m.verdict.1.as_secs_f64() / first.verdict.1.as_secs_f64().max(1e-9);
        // Per copy: a kind routed to more agencies here (national sector
        // leads receive every region's alerts) is compared copy for copy.
        let rate_ratios: Vec<f64> = m
            .delivered
            .iter()
            .zip(&first.delivered)
            .map(|((_, here, r), (_, there, b))| (b * *there as f64) / (r * *here as f64).max(1e-9))
            .collect();
        let met = p99_ratio <= GOAL_RATIO && rate_ratios.iter().all(|r| *r <= GOAL_RATIO);
        println!(
            "| {} | {} | {} / {} | {} / {} | {} | {p99_ratio:.2} | {} | slower by ≤ {GOAL_RATIO}× | {} |",
            m.agencies,
            ms(m.ready),
            ms(m.verdict.0),
            ms(m.verdict.1),
            ms(m.read.0),
            ms(m.read.1),
            m.delivered
                .iter()
                .map(|(_, here, r)| format!("{r:.0} ({here})"))
                .collect::<Vec<_>>()
                .join(", "),
            rate_ratios
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(", "),
            if met { "met" } else { "not met" }
        );
    }
    println!();
    println!(
        "| agencies | NKey login p50 / p99 (auth callout) | password login p50 / p99 | login p99 vs password | \
         added → first login | suspended → connection closed | goal ≤ 1 s | met |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for m in &measured {
        let l = &m.logins;
        let ratio = l.nkey.1.as_secs_f64() / l.password.1.as_secs_f64().max(1e-9);
        let met = l.added_to_login <= Duration::from_secs(1)
            && l.suspended_to_closed <= Duration::from_secs(1);
        println!(
            "| {} | {} / {} | {} / {} | {ratio:.2} | {} | {} | ≤ 1 s | {} |",
            m.agencies,
            ms(l.nkey.0),
            ms(l.nkey.1),
            ms(l.password.0),
            ms(l.password.1),
            ms(l.added_to_login),
            ms(l.suspended_to_closed),
            if met { "met" } else { "not met" }
        );
    }
    println!();
    println!("| agencies | service | RSS peak | RSS now | goal | met |");
    println!("|---|---|---|---|---|---|");
    for m in &measured {
        for (service, peak, current) in &m.memory {
            let goal = service != "nats-server (baseline)";
            println!(
                "| {} | {service} | {} | {} | {} | {} |",
                m.agencies,
                mib(*peak),
                mib(*current),
                if goal { "≤ 128 MiB" } else { "" },
                match (goal, *peak <= GOAL_RSS) {
                    (false, _) => "",
                    (true, true) => "met",
                    (true, false) => "not met",
                }
            );
        }
    }
    println!(
        "\nEach size measured twice in mirrored order, the better figures kept (memory: the higher). Ratios: the \
         first size's rate per copy over this size's (how many times slower), this size's p99 over the first's. \
         `ready` is `System::start`: nats-server, provisioning, every service."
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn run(cli: &Cli, args: &BenchArgs) -> Result<ExitCode> {
    if !args.agencies.is_empty() {
        return routing(cli, args).await;
    }
    let (config, flush) = args.config(cli)?;
    let envelopes = args.envelopes.map(|n| n as usize);
    let options = if args.quick {
        BenchOptions::quick(envelopes)
    } else {
        BenchOptions::full(envelopes.unwrap_or(5_000))
    };
    println!(
        "liaison bench: {} envelopes of each kind, latency at {:?}/s ({} sends each), {flush}",
        options.envelopes, options.rates, options.latency_sends
    );
    let rows = bench::run(config, &options, |step| println!("  … {step}")).await?;
    println!();
    print(&rows);
    if let Some(path) = &args.json {
        let all = serde_json::json!({
            "flush": flush,
            "envelopes": options.envelopes,
            "rows": rows.iter().map(json_row).collect::<Vec<_>>(),
        });
        std::fs::write(path, serde_json::to_string_pretty(&all)?)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        println!("\nEvery row as JSON: {}", path.display());
    }
    println!(
        "\nRatios: rates over the raw JetStream publish rate; raw latencies over the raw publish → ack p99 at the same rate; \
         Liaison's latencies p99 over the p99 of the same hops in raw NATS at the same rate (request → stored → answer for \
         verdicts, … → relayed → read for reads), with the ratio to raw publish → ack in the row's name; memory peak over \
         nats-server's peak."
    );
    Ok(ExitCode::SUCCESS)
}
