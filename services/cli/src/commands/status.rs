//! `liaison status`: what an operator checks first. The nats-server (version,
//! JetStream storage), each stream and consumer (pending and unacknowledged,
//! and their sum, the lag, per agency for DELIVERY), the ledger's height and
//! latest signed checkpoint (size, root, time), the services registered
//! with the NATS service API (`$SRV.INFO`: name, version, endpoints) and
//! whether each service's operations listener answers `/readyz`. Exits 1,
//! with the reasons, if a stream or consumer is missing, one of the five
//! services is not registered, or a listener does not answer. It reads; it
//! changes nothing.

use super::Cli;
use anyhow::{Context as _, Result};
use async_nats::jetstream::{self, consumer::PullConsumer};
use clap::Args;
use liaison_core::connect::connect;
use liaison_core::session::{self, Session};
use liaison_core::subjects;
use liaison_runtime::discovery::Member;
use liaison_runtime::registry::Registry;
use liaison_runtime::users;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The gateway's operations listener, e.g. 127.0.0.1:9464 [default: from the session].
    #[arg(long)]
    gateway_telemetry: Option<String>,
    /// The audit service's operations listener [default: from the session].
    #[arg(long)]
    audit_telemetry: Option<String>,
}

const STREAMS: [&str; 5] = [
    subjects::EVENTS_STREAM,
    subjects::DELIVERY_STREAM,
    subjects::DECISIONS_STREAM,
    subjects::LEDGER_STREAM,
    subjects::CHECKPOINTS_STREAM,
];

pub async fn run(cli: &Cli, args: &StatusArgs) -> Result<ExitCode> {
    let config = cli.load_config()?;
    let registry = Registry::load(&config.paths.registry)?;
    let target = cli.target(users::OPERATOR)?;
    let client = connect(
        &target.url,
        &target.credentials,
        &target.tls,
        "liaison-status",
    )
    .await?;
    let js = jetstream::new(client.clone());
    let mut problems: Vec<String> = Vec::new();

    let info = client.server_info();
    let account = js
        .query_account()
        .await
        .context("JetStream account information")?;
    println!(
        "nats-server {} at {}  JetStream storage {} bytes, {} streams, {} consumers",
        info.version, target.url, account.storage, account.streams, account.consumers
    );
    println!(
        "Servers: {} ({}){}",
        info.server_name,
        info.cluster
            .as_deref()
            .map_or("no cluster".to_owned(), |c| format!("cluster {c}")),
        if info.connect_urls.is_empty() {
            String::new()
        } else {
            format!(", also at {}", info.connect_urls.join(", "))
        }
    );

    println!("Streams:");
    for name in STREAMS {
        match js.get_stream(name).await {
            Ok(mut stream) => {
                let state = stream.info().await?.state.clone();
                println!(
                    "  {name:<12} {:>8} messages {:>12} bytes  seq {}..{}",
                    state.messages, state.bytes, state.first_sequence, state.last_sequence
                );
            }
            Err(e) => problems.push(format!("stream {name} missing: {e}")),
        }
    }

    println!("Consumers:                    pending  unacknowledged    lag");
    for (stream, name) in [
        (
            subjects::EVENTS_STREAM,
            subjects::ROUTER_CONSUMER.to_owned(),
        ),
        (
            subjects::DECISIONS_STREAM,
            subjects::LEDGER_WRITER_CONSUMER.to_owned(),
        ),
    ] {
        let found: Result<PullConsumer, _> =
            js.get_consumer_from_stream(name.as_str(), stream).await;
        match found {
            Ok(mut consumer) => {
                let info = consumer.info().await?;
                println!(
                    "  {stream:<9} {name:<21} {:>6}  {:>14}  {:>5}",
                    info.num_pending,
                    info.num_ack_pending,
                    info.num_pending + info.num_ack_pending as u64
                );
            }
            Err(e) => problems.push(format!("consumer {name} on {stream} missing: {e}")),
        }
    }

    // Inboxes are subjects, not consumers (ADR 0019): one read each, so a
    // national registry is shown in part.
    let ids = registry.ids();
    println!(
        "Inboxes:                     copies  unacknowledged{}",
        if ids.len() > INBOXES_SHOWN {
            format!("  (the first {INBOXES_SHOWN} of {} agencies)", ids.len())
        } else {
            String::new()
        }
    );
    // Asked of a gateway: the operator may not read DELIVERY (ADR 0021).
    let shown: Vec<_> = ids.iter().take(INBOXES_SHOWN).cloned().collect();
    match liaison_runtime::inbox::ask_backlogs(&client, &shown).await {
        Ok(backlogs) => {
            for (agency, backlog) in backlogs {
                match backlog {
                    Ok(backlog) => println!(
                        "  {:<28} {:>6}  {:>14}",
                        agency.as_str(),
                        backlog.last,
                        backlog.waiting
                    ),
                    Err(e) => problems.push(format!("inbox of {agency}: {e}")),
                }
            }
        }
        Err(e) => problems.push(format!("inboxes: {e}")),
    }

    // Records, not messages: a LEDGER message holds a block of entries.
    let height = liaison_audit::verify::ledger_end(&js)
        .await
        .ok()
        .map(|(_, _, records)| records);
    let checkpoint = match js.get_stream(subjects::CHECKPOINTS_STREAM).await {
        Ok(s) => s
            .get_last_raw_message_by_subject(subjects::LEDGER_CHECKPOINTS)
            .await
            .ok()
            .and_then(|m| {
                let note = String::from_utf8_lossy(&m.payload).into_owned();
                let root = note.lines().nth(2).unwrap_or_default().trim().to_owned();
                checkpoint_size(&note).map(|size| (size, root, m.time))
            }),
        Err(_) => None,
    };
    println!(
        "Ledger: {} records; latest signed checkpoint: {}",
        height.map_or("?".to_owned(), |h| h.to_string()),
        checkpoint.map_or("none yet".to_owned(), |(size, root, time)| format!(
            "{size} records, root {root}, signed {time}"
        ))
    );

    println!("Registered services ($SRV.INFO):");
    match liaison_system::discover::services(&client).await {
        Ok(found) => {
            for info in &found {
                let endpoints: Vec<String> = info
                    .endpoints
                    .iter()
                    .map(|e| format!("{} ({})", e.name, e.subject))
                    .collect();
                println!(
                    "  {:<16} {:<8} {}  endpoints: {}",
                    info.name,
                    info.version,
                    info.id,
                    endpoints.join(", ")
                );
            }
            for member in Member::ALL {
                if !found.iter().any(|i| i.name == member.service_name()) {
                    problems.push(format!(
                        "{} is not registered (no answer to $SRV.INFO)",
                        member.service_name()
                    ));
                }
            }
        }
        Err(e) => problems.push(format!("service discovery: {e}")),
    }

    let path = cli.session.clone().unwrap_or_else(session::default_path);
    let session = Session::load(&path).ok();
    let known = |service: &str| {
        session
            .as_ref()
            .and_then(|s| s.telemetry.get(service).cloned())
    };
    println!("Operations listeners:");
    for member in Member::ALL {
        let service = member.name();
        let given = match member {
            Member::Gateway => args.gateway_telemetry.clone(),
            Member::Audit => args.audit_telemetry.clone(),
            _ => None,
        };
        let Some(addr) = given
            .or_else(|| known(service))
            .filter(|a| !a.trim().is_empty())
        else {
            println!("  {service:<8} not checked (no operations listener known)");
            continue;
        };
        match ready(&addr).await {
            Ok(()) => println!("  {service:<8} ready (http://{addr}/readyz)"),
            Err(e) => {
                println!("  {service:<8} NOT READY: {e}");
                problems.push(format!("{service} at {addr}: {e}"));
            }
        }
    }

    if problems.is_empty() {
        println!("All well.");
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &problems {
            println!("PROBLEM: {p}");
        }
        Ok(ExitCode::FAILURE)
    }
}

/// Most inboxes listed one by one.
const INBOXES_SHOWN: usize = 50;

/// The tree size a signed checkpoint note claims (its second line); its
/// signature is checked by `liaison audit verify`, not here.
fn checkpoint_size(note: &str) -> Option<u64> {
    note.lines().nth(1)?.trim().parse().ok()
}

/// Asks a service's `/readyz` (five seconds at most).
async fn ready(addr: &str) -> Result<(), String> {
    match liaison_system::ops_http::get(addr, "/readyz", Duration::from_secs(5)).await? {
        (200, _) => Ok(()),
        (status, body) => Err(format!("{status} {}", body.trim())),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn checkpoint_size_is_the_second_line() {
        assert_eq!(
            super::checkpoint_size("liaison.example/ledger\n42\nAAAA\n\n— x y\n"),
            Some(42)
        );
        assert_eq!(super::checkpoint_size("origin only\n"), None);
    }
}
