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

/// `--agencies`: the routing decision at each registry size.
fn routing(args: &BenchArgs) -> Result<ExitCode> {
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
    println!(
        "\nGoal (issue 18): verdict p99 and rate at 25,000 agencies within 1.2x of 8. The pipeline through \
         NATS at these sizes waits on the national delivery model."
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn run(cli: &Cli, args: &BenchArgs) -> Result<ExitCode> {
    if !args.agencies.is_empty() {
        return routing(args);
    }
    let config = cli.load_config()?;
    let envelopes = args.envelopes.map(|n| n as usize);
    let options = if args.quick {
        BenchOptions::quick(envelopes)
    } else {
        BenchOptions::full(envelopes.unwrap_or(5_000))
    };
    println!(
        "liaison bench: {} envelopes of each kind, latency at {:?}/s ({} sends each), default JetStream flush",
        options.envelopes, options.rates, options.latency_sends
    );
    let rows = bench::run(config, &options, |step| println!("  … {step}")).await?;
    println!();
    print(&rows);
    println!(
        "\nRatios: rates over the raw JetStream publish rate; raw latencies over the raw publish → ack p99 at the same rate; \
         Liaison's latencies p99 over the p99 of the same hops in raw NATS at the same rate (request → stored → answer for \
         verdicts, … → relayed → read for reads), with the ratio to raw publish → ack in the row's name; memory peak over \
         nats-server's peak."
    );
    Ok(ExitCode::SUCCESS)
}
