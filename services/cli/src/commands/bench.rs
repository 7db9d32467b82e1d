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

pub async fn run(cli: &Cli, args: &BenchArgs) -> Result<ExitCode> {
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
