//! `liaison demo`: start a system, run the partnership's day through it
//! (`liaison_system::demo`), report what happened, verify the ledger, stop.

use super::Cli;
use anyhow::Result;
use clap::Args;
use liaison_client::AgencyClient;
use liaison_runtime::users;
use liaison_system::demo::agencies::{BUSY_PARTNER, CLOSED_TODAY};
use liaison_system::demo::run::PhaseReport;
use liaison_system::demo::tally::{Tally, percentile};
use liaison_system::demo::{DemoOptions, Plan, run as run_day};
use liaison_system::keys;
use liaison_system::system::{System, UpOptions};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Contributions in the day (a real day is ~3,600); the case load at
    /// dawn scales with it (~500 live investigations at 3,600).
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(40..=100_000))]
    contributions: u64,
    /// Seconds before an unacknowledged CRITICAL alert is escalated (a
    /// real partnership: 900; the demo compresses its day).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    escalate_after: u64,
    /// Kill the cases, linkage and alerts services mid-day (events waiting
    /// for them) and start them again, to see that nothing is lost or
    /// raised twice.
    #[arg(long)]
    kill_services: bool,
    /// Register a generated nation beside the partnership (its areas are
    /// not the partnership's): the day runs in Exampleshire and Westshire
    /// while the rest of the country is registered, and the report says how
    /// many copies went outside their sender's areas, and under which
    /// clauses.
    #[arg(long)]
    national: bool,
    /// With --national: local-authority areas of the generated nation.
    #[arg(long, default_value_t = 150, requires = "national", value_parser = clap::value_parser!(u64).range(1..=1000))]
    areas: u64,
    /// With --national: schools in each of its areas (150 × 164: 24,998 agencies).
    #[arg(long, default_value_t = 164, requires = "national", value_parser = clap::value_parser!(u64).range(0..=1000))]
    schools_per_area: u64,
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn print_phase(p: &PhaseReport) {
    println!(
        "  {:<7} {:<45} {:>5} sent, {:>5} accepted, {:>6.1} s",
        p.part,
        p.name,
        p.sent,
        p.accepted,
        p.took.as_secs_f64()
    );
}

/// Counts by agency, one line each: `kind n, kind n, ...`.
fn print_by_agency(title: &str, counts: &BTreeMap<(String, String), usize>) {
    println!("\n{title}:");
    let mut lines: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for ((agency, kind), n) in counts {
        lines.entry(agency).or_default().push(format!("{kind} {n}"));
    }
    for (agency, kinds) in lines {
        println!("  {agency:<16} {}", kinds.join(", "));
    }
}

pub async fn run(cli: &Cli, args: &DemoArgs) -> Result<ExitCode> {
    let mut config = cli.load_config()?;
    config.alerts.escalate_critical_secs = args.escalate_after;
    // The partnership's agencies: those of the development registry.
    let partnership = liaison_runtime::registry::Registry::load(&config.paths.registry)?.ids();
    let nation = if args.national {
        let options = liaison_system::national::Options::new(
            args.areas as usize,
            args.schools_per_area as usize,
        );
        let dir = tempfile::Builder::new()
            .prefix("liaison-demo-national-")
            .tempdir()?;
        let path = dir.path().join("registry.toml");
        let text = liaison_system::national::with_partnership(&std::env::current_dir()?, &options)?;
        std::fs::write(&path, text)?;
        println!(
            "A nation registered beside the partnership: {} agencies in {} areas ({} schools each).",
            options.agencies(),
            options.areas,
            options.schools_per_area
        );
        config.paths.registry = path;
        Some(dir)
    } else {
        None
    };
    println!(
        "Starting Liaison (nats-server on a free port; gateway, audit, cases, linkage, alerts) ..."
    );
    let started = std::time::Instant::now();
    let mut system = System::start(config.clone(), UpOptions::default()).await?;
    println!(
        "  NATS {}, {} agencies registered, ready in {:.1} s",
        system.url(),
        system.registry.len(),
        started.elapsed().as_secs_f64()
    );
    let (clients, business) = liaison_system::demo::agencies::connect_these(
        &system,
        &config,
        std::path::Path::new(keys::DEV_KEYS),
        &partnership,
    )
    .await?;
    let key = liaison_client::subject::SubjectKey::from_file(std::path::Path::new(
        keys::DEV_SUBJECT_KEY,
    ))?;
    let plan = Plan::new(args.contributions as usize, &key);
    println!(
        "\nThe case load at dawn: {} live investigations, {} former subjects under review; then a day of {} contributions.",
        plan.live_cases, plan.former_subjects, args.contributions
    );
    println!(
        "({CLOSED_TODAY} is closed today and answers no request; {BUSY_PARTNER} acknowledges alerts only when reminded; escalation after {} s.)\n",
        args.escalate_after
    );
    let tally = Tally::default();
    let options = DemoOptions {
        escalation: Duration::from_secs(args.escalate_after),
        kill_after: args
            .kill_services
            .then_some(liaison_system::demo::day::KILL_AFTER),
    };
    let report = run_day(
        &mut system,
        &clients,
        &business,
        &plan,
        &tally,
        &options,
        print_phase,
    )
    .await?;
    if report.killed {
        println!(
            "  (the cases, linkage and alerts services were killed after \"{}\" and started again)",
            liaison_system::demo::day::KILL_AFTER
        );
    }

    print_report(&plan, &tally, &report);
    print_cases(&clients).await?;
    let acknowledged = tally
        .lock()
        .sent
        .iter()
        .filter(|((_, kind), _)| kind == "alert_ack")
        .map(|(_, n)| n)
        .sum();
    print_alerts(&system, acknowledged).await?;

    let operator = system.connect_as(users::OPERATOR).await?;
    // A signed checkpoint of the day's ledger, as an operator may ask for one.
    operator
        .request(liaison_core::subjects::CHECKPOINT_REQUEST, "".into())
        .await
        .map_err(|e| anyhow::anyhow!("checkpoint: {e}"))?;
    let verifier = liaison_audit::signer(&config)?.verifier();
    // Verified with the audit service's own rights: auditors read LEDGER only
    // through a recorded consultation (`liaison audit verify`).
    let reader = async_nats::jetstream::new(system.connect_as(users::AUDIT).await?);
    let mut collections = Vec::new();
    let ledger = liaison_audit::verify::verify(&reader, &verifier, |_, record| {
        if record.operation == liaison_proto::v1::Operation::Collection as i32
            && record.decision == liaison_proto::v1::Decision::Accepted as i32
        {
            collections.push(record.clone());
        }
    })
    .await?;
    let crossed = print_areas(&system.registry, &collections, nation.is_some());
    println!("\nAudit ledger:");
    let mut code = super::audit::print_report(&ledger);
    if crossed > 0 {
        println!("\n{crossed} referral copies went outside their sender's areas.");
        code = ExitCode::FAILURE;
    }
    system.shutdown().await?;
    drop(nation);
    println!("\nDemo finished; everything stopped.");
    Ok(code)
}

fn print_report(plan: &Plan, tally: &Tally, report: &liaison_system::demo::Report) {
    let moments = &plan.moments;
    {
        let c = tally.lock();
        print_by_agency("Sent, by agency and kind", &c.sent);
        println!("\nGateway verdicts:");
        for (outcome, n) in &c.outcomes {
            println!("  {outcome:<40} {n:>6}");
        }
        print_by_agency("Refused, by sender, kind and code", &c.refused);
        print_by_agency(
            "Delivered (read and acknowledged), by agency and kind",
            &c.delivered,
        );
        println!("\nWith fields withheld by the agreements (per recipient):");
        for (agency, n) in &c.withheld {
            println!("  {agency:<16} {n:>6}");
        }
        println!(
            "\nLatency: verdict p50 {}, p99 {} ({} envelopes); sent → read by a recipient p50 {}, p99 {}, max {} ({} deliveries)",
            ms(percentile(&c.verdicts, 0.5)),
            ms(percentile(&c.verdicts, 0.99)),
            c.verdicts.len(),
            ms(percentile(&c.deliveries, 0.5)),
            ms(percentile(&c.deliveries, 0.99)),
            ms(percentile(&c.deliveries, 1.0)),
            c.deliveries.len(),
        );
        println!(
            "Deliveries read twice by the same agency: {}.",
            c.duplicates
        );
        println!(
            "The day: {} contributions in {:.1} s ({:.0}/s, eight in flight).",
            report.day_sent,
            report.day_took.as_secs_f64(),
            report.day_sent as f64 / report.day_took.as_secs_f64().max(1e-9)
        );
    }
    println!("\nWhat Liaison raised:");
    println!(
        "  weekly re-prioritisation and case moves: {} priority changes told to the owners",
        tally.delivered_kind("priority_changed")
    );
    if let Some((referral, case)) = &moments.reengaging {
        let alert = format!("reengagement:{referral}:{case}");
        match tally.between(referral, "police", &alert) {
            Some(d) => println!(
                "  a former subject of {case} referred again ({referral}): re-engagement alert to the owner {} after the referral was sent",
                ms(d)
            ),
            None => println!(
                "  a former subject of {case} referred again ({referral}): no re-engagement alert read"
            ),
        }
    }
    if let Some(second) = moments.referred_twice.last() {
        let ids = tally.read_ids("police", "duplicate:");
        let took = ids
            .iter()
            .find_map(|id| tally.between(second, "police", id));
        println!(
            "  one person referred by two agencies: {} duplicate-subject notices{}",
            tally.delivered_kind("duplicate_subject"),
            took.map(|d| format!(", the police told {} after the second referral", ms(d)))
                .unwrap_or_default()
        );
    }
    for alert in &moments.alerts {
        let reads: Vec<String> = ["retail-bsp", "transport-bsp", "council"]
            .into_iter()
            .filter_map(|a| {
                tally
                    .between(alert, a, alert)
                    .map(|d| format!("{a} {}", ms(d)))
            })
            .collect();
        println!("  alert {alert} read by {}", reads.join(", "));
    }
    println!(
        "  {} alert escalations, {} acknowledgements; {} overdue information-request reminders; {} review reminders",
        tally.delivered_kind("alert_escalated"),
        tally.delivered_kind("alert_ack"),
        tally.delivered_kind("request_overdue"),
        tally.delivered_kind("review_due"),
    );
}

/// The live case lists per unit, as their owners see them (ids and ranks
/// only: `liaison cases list --agency OWNER`).
async fn print_cases(clients: &BTreeMap<liaison_core::AgencyId, Arc<AgencyClient>>) -> Result<()> {
    use liaison_proto::v1::CaseQuery;
    println!("\nCase lists at the end of the day (liaison cases list --agency OWNER):");
    for (owner, unit) in liaison_system::demo::casebook::UNITS {
        let Some(client) = liaison_core::AgencyId::parse(owner)
            .ok()
            .and_then(|a| clients.get(&a))
        else {
            continue;
        };
        let query = CaseQuery {
            unit: unit.into(),
            limit: 1000,
            ..Default::default()
        };
        let answer = client.cases(&format!("{owner}-analyst"), &query).await?;
        let mut cases: Vec<(u32, &str)> = answer
            .cases
            .iter()
            .filter(|c| c.owner == owner && c.rank > 0)
            .map(|c| (c.rank, c.case_id.as_str()))
            .collect();
        cases.sort();
        let top: Vec<&str> = cases.iter().take(5).map(|(_, id)| *id).collect();
        println!(
            "  {owner:<8} {unit:<14} {:>4} live; top of the list: {}",
            cases.len(),
            top.join(", ")
        );
    }
    Ok(())
}

/// What `liaison alerts --all` shows once the alerts service has counted the
/// partners' acknowledgements.
async fn print_alerts(system: &System, acknowledged: usize) -> Result<()> {
    use liaison_alerts::board;
    let js = async_nats::jetstream::new(system.connect_as(users::OPERATOR).await?);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut ticks = tokio::time::interval(Duration::from_millis(50));
    let rows = loop {
        ticks.tick().await;
        let alerts = board::read(&js).await?;
        let counted: usize = alerts.iter().map(|a| a.acknowledged_count()).sum();
        if counted >= acknowledged || std::time::Instant::now() > deadline {
            break board::rows(&alerts, liaison_alerts::now_ms(), true);
        }
    };
    println!(
        "\nAlerts to business partners ({acknowledged} acknowledgements sent; liaison alerts --all):"
    );
    print!("{}", board::table(&rows));
    Ok(())
}

/// Copies of the day's shares by area, from the ledger's collection
/// records: per kind, how many went to agencies serving one of the
/// sender's areas, and how many went elsewhere with the clauses that sent
/// them there (case updates follow a case's participants; alerts go by
/// sector and region). Returns the referral copies that left their
/// sender's areas: the ISA clauses allow none.
fn print_areas(
    registry: &liaison_runtime::registry::Registry,
    collections: &[liaison_proto::v1::AuditRecord],
    national: bool,
) -> usize {
    use liaison_core::AgencyId;
    #[derive(Default)]
    struct Row {
        shares: usize,
        inside: usize,
        outside: usize,
        clauses: std::collections::BTreeSet<String>,
    }
    let areas = |id: &str| -> Vec<String> {
        AgencyId::parse(id)
            .ok()
            .and_then(|id| registry.get(&id).map(|a| a.areas.clone()))
            .unwrap_or_default()
    };
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    for record in collections {
        let from = areas(&record.agency);
        let row = rows.entry(record.kind.clone()).or_default();
        row.shares += 1;
        for recipient in &record.recipients {
            let to = areas(recipient);
            // Liaison's own services act for the whole partnership.
            let national = liaison_core::system::Service::of_sender(&record.agency).is_some()
                || from
                    .iter()
                    .any(|a| a == liaison_runtime::registry::NATIONAL);
            let shared = national || to.iter().any(|a| from.contains(a));
            if shared {
                row.inside += 1;
            } else {
                row.outside += 1;
                row.clauses.extend(record.policy_ids.iter().cloned());
            }
        }
    }
    println!(
        "\nCopies by area{} (inside: the recipient serves one of the sender's areas, or the sender is national):",
        if national {
            ", with the nation registered"
        } else {
            ""
        }
    );
    println!(
        "  {:<24} {:>6} {:>7} {:>8}  clauses that sent copies outside",
        "kind", "shares", "inside", "outside"
    );
    for (kind, row) in &rows {
        println!(
            "  {kind:<24} {:>6} {:>7} {:>8}  {}",
            row.shares,
            row.inside,
            row.outside,
            row.clauses.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    rows.get("referral").map_or(0, |r| r.outside)
}
