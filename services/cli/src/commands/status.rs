//! `liaison status`: what an operator checks first. The nats-server (version,
//! JetStream storage), each stream and consumer (pending and unacknowledged,
//! per agency for DELIVERY), the ledger's height and latest checkpoint, and
//! whether the gateway and audit services answer `/readyz`. Exits 1, with
//! the reasons, if a consumer is missing or a service does not answer.
//! It reads; it changes nothing.

use super::Cli;
use anyhow::{Context as _, Result};
use async_nats::jetstream::{self, consumer::PullConsumer};
use clap::Args;
use liaison_kit::connect::connect;
use liaison_kit::registry::Registry;
use liaison_kit::session::{self, Session};
use liaison_kit::{subjects, users};
use std::process::ExitCode;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

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
    let client = connect(&target.url, &target.credentials, "liaison-status").await?;
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

    println!("Consumers:                 pending  unacknowledged");
    let mut expected = vec![
        (
            subjects::EVENTS_STREAM,
            subjects::ROUTER_CONSUMER.to_owned(),
        ),
        (
            subjects::DECISIONS_STREAM,
            subjects::LEDGER_WRITER_CONSUMER.to_owned(),
        ),
    ];
    expected.extend(
        registry
            .ids()
            .iter()
            .map(|a| (subjects::DELIVERY_STREAM, subjects::delivery_consumer(a))),
    );
    for (stream, name) in expected {
        let found: Result<PullConsumer, _> =
            js.get_consumer_from_stream(name.as_str(), stream).await;
        match found {
            Ok(mut consumer) => {
                let info = consumer.info().await?;
                println!(
                    "  {stream:<9} {name:<18} {:>6}  {:>6}",
                    info.num_pending, info.num_ack_pending
                );
            }
            Err(e) => problems.push(format!("consumer {name} on {stream} missing: {e}")),
        }
    }

    let mut ledger = js.get_stream(subjects::LEDGER_STREAM).await;
    let height = match &mut ledger {
        Ok(s) => s.info().await.map(|i| i.state.messages).ok(),
        Err(_) => None,
    };
    let checkpoint = match js.get_stream(subjects::CHECKPOINTS_STREAM).await {
        Ok(s) => s
            .get_last_raw_message_by_subject(subjects::LEDGER_CHECKPOINTS)
            .await
            .ok()
            .and_then(|m| checkpoint_size(&String::from_utf8_lossy(&m.payload))),
        Err(_) => None,
    };
    println!(
        "Ledger: {} records; latest signed checkpoint: {}",
        height.map_or("?".to_owned(), |h| h.to_string()),
        checkpoint.map_or("none yet".to_owned(), |s| format!("{s} records"))
    );

    let path = cli.session.clone().unwrap_or_else(session::default_path);
    let session = Session::load(&path).ok();
    let known = |service: &str| {
        session
            .as_ref()
            .and_then(|s| s.telemetry.get(service).cloned())
    };
    println!("Services:");
    for (service, addr) in [
        (
            "gateway",
            args.gateway_telemetry.clone().or_else(|| known("gateway")),
        ),
        (
            "audit",
            args.audit_telemetry.clone().or_else(|| known("audit")),
        ),
    ] {
        let Some(addr) = addr.filter(|a| !a.trim().is_empty()) else {
            println!(
                "  {service:<8} not checked (no operations listener known: --{service}-telemetry)"
            );
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

/// The tree size a signed checkpoint note claims (its second line); its
/// signature is checked by `liaison audit verify`, not here.
fn checkpoint_size(note: &str) -> Option<u64> {
    note.lines().nth(1)?.trim().parse().ok()
}

/// Asks a service's `/readyz` (plain HTTP/1.1, five seconds at most).
async fn ready(addr: &str) -> Result<(), String> {
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("no answer: {e}"))?;
        stream
            .write_all(
                format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .map_err(|e| e.to_string())?;
        let mut reply = Vec::new();
        stream
            .read_to_end(&mut reply)
            .await
            .map_err(|e| e.to_string())?;
        let reply = String::from_utf8_lossy(&reply);
        let status = reply.lines().next().unwrap_or_default().to_owned();
        if status.split_whitespace().nth(1) == Some("200") {
            Ok(())
        } else {
            let body = reply.split("\r\n\r\n").nth(1).unwrap_or_default().trim();
            Err(format!("{status} {body}"))
        }
    };
    tokio::time::timeout(Duration::from_secs(5), ask)
        .await
        .unwrap_or_else(|_| Err("no answer within 5 s".to_owned()))
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
