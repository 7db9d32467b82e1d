//! `liaison demo`: start a system, replay a day through it, report, stop.

use super::Cli;
use anyhow::Result;
use clap::Args;
use liaison::client::AgencyClient;
use liaison::demo;
use liaison::keys;
use liaison::system::{System, UpOptions};
use liaison_kit::users;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Contributions to replay (a real day is ~3,600).
    #[arg(long, default_value_t = 600)]
    contributions: usize,
}

pub async fn run(cli: &Cli, args: &DemoArgs) -> Result<ExitCode> {
    let config = cli.load_config()?;
    println!("Starting Liaison (nats-server on a free port, gateway, audit) ...");
    let system = System::start(config.clone(), UpOptions::default()).await?;
    println!("  NATS {}", system.url());
    let mut clients = BTreeMap::new();
    for agency in system.registry.ids() {
        let pem = keys::read_key(&keys::dev_key_path(&agency))?;
        let credentials = system.credentials(agency.as_str())?;
        let client = AgencyClient::connect(
            &system.url(),
            &credentials,
            agency.clone(),
            &pem,
            &config.gateway.audience,
        )
        .await?;
        clients.insert(agency, client);
    }
    let key = liaison::client::SubjectKey::from_file(std::path::Path::new(
        liaison::keys::DEV_SUBJECT_KEY,
    ))?;
    let day = demo::day(args.contributions, &key);
    // The case service (issue 6) will own participation; the demo records it
    // as an operator would, before the day starts.
    let operator = async_nats::jetstream::new(system.connect_as(users::OPERATOR).await?);
    let store = liaison_kit::participation::Store::open(&operator).await?;
    for (case, participation) in demo::participation(&day) {
        store.put(&case, &participation).await?;
    }
    println!(
        "Replaying {} contributions from the partnership's day ...",
        day.len()
    );
    let started = Instant::now();
    let summary = demo::replay(&clients, &day).await?;
    let elapsed = started.elapsed();

    println!("\nSent, by agency and kind:");
    for ((agency, kind), n) in &summary.sent {
        println!("  {agency:<14} {kind:<12} {n:>5}");
    }
    println!("\nGateway verdicts:");
    for (outcome, n) in &summary.outcomes {
        println!("  {outcome:<50} {n:>5}");
    }
    println!(
        "\nVerdict latency: p50 {:.1} ms, p99 {:.1} ms; {:.0} envelopes/s over {:.1} s",
        summary.percentile(0.5).as_secs_f64() * 1e3,
        summary.percentile(0.99).as_secs_f64() * 1e3,
        summary.latencies.len() as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );

    println!("\nInboxes (read and acknowledged by each agency):");
    let mut alerts_acknowledged = 0;
    for (agency, client) in &clients {
        let mut received = 0;
        let mut withheld = 0;
        let business = system
            .registry
            .get(agency)
            .is_some_and(|a| a.kind == liaison_kit::registry::AgencyKind::Business);
        loop {
            let batch = client.inbox(500, Duration::from_millis(300)).await?;
            if batch.is_empty() {
                break;
            }
            received += batch.len();
            withheld += batch
                .iter()
                .filter(|d| !d.withheld_labels.is_empty())
                .count();
            // Business partners acknowledge the alerts they receive.
            for alert in batch.iter().filter_map(|d| d.envelope.as_ref()) {
                if business && alert.kind() == "alert" {
                    let ack = demo::acknowledgement(alert, agency);
                    client
                        .send_until_answered(&ack, Duration::from_secs(30))
                        .await?;
                    alerts_acknowledged += 1;
                }
            }
        }
        println!(
            "  {:<14} {received:>5} delivered, {withheld:>5} with fields withheld",
            agency.as_str()
        );
    }

    print_alerts(&system, alerts_acknowledged).await?;

    system.wait_until_settled(Duration::from_secs(60)).await?;
    let auditor = system.connect_as(users::AUDITOR).await?;
    // A signed checkpoint of the day's ledger, as an auditor would ask for one.
    auditor
        .request(liaison_kit::subjects::CHECKPOINT_REQUEST, "".into())
        .await
        .map_err(|e| anyhow::anyhow!("checkpoint: {e}"))?;
    let verifier = liaison_audit::signer(&config)?.verifier();
    let report =
        liaison_audit::verify::verify(&async_nats::jetstream::new(auditor), &verifier, |_, _| {})
            .await?;
    println!("\nAudit ledger:");
    let code = super::audit::print_report(&report);
    system.shutdown().await?;
    println!("\nDemo finished; everything stopped.");
    Ok(code)
}

/// What `liaison alerts --all` shows once the alerts service has counted the
/// partners' acknowledgements.
async fn print_alerts(system: &System, acknowledged: usize) -> Result<()> {
    use liaison_alerts::board;
    let js = async_nats::jetstream::new(system.connect_as(users::OPERATOR).await?);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ticks = tokio::time::interval(Duration::from_millis(50));
    let rows = loop {
        ticks.tick().await;
        let alerts = board::read(&js).await?;
        let counted: usize = alerts.iter().map(|a| a.acknowledged_count()).sum();
        if counted >= acknowledged || Instant::now() > deadline {
            break board::rows(&alerts, liaison_alerts::now_ms(), true);
        }
    };
    println!(
        "\nAlerts to business partners ({acknowledged} acknowledgements sent; liaison alerts --all):"
    );
    print!("{}", board::table(&rows));
    Ok(())
}
