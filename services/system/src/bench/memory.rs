//! Each service's memory when run as its own process: a second nats-server,
//! the streams provisioned, then gateway, audit, cases, linkage and alerts
//! each started as `liaison serve SERVICE` (this same binary) with its own
//! configuration file and NATS user; the pipeline driven through them (1, 2
//! and 3 recipients) until settled; then each process's peak (`VmHWM`) and
//! current (`VmRSS`) resident set read from `/proc/PID/status`, beside
//! nats-server's own peak as the raw baseline.

use super::envelopes::Kind;
use super::{Figure, Row, pipeline, settle};
use anyhow::{Context as _, Result, anyhow, bail};
use async_nats::jetstream;
use liaison_client::AgencyClient;
use liaison_core::AgencyId;
use liaison_core::connect::connect;
use liaison_core::system::Service;
use liaison_runtime::config::Config;
use liaison_runtime::nats_server::{NatsServer, ServerOptions};
use liaison_runtime::users;
use std::path::Path;
use std::time::{Duration, Instant};

/// The goal per service.
pub const GOAL_BYTES: u64 = 64 * 1024 * 1024;

/// Peak and current resident set of process `pid`, in bytes.
pub fn rss(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .ok_or_else(|| anyhow!("no {name} in /proc/{pid}/status"))?;
        let kib: u64 = line
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .with_context(|| format!("{name} of process {pid}"))?;
        Ok(kib * 1024)
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

/// The services, by the name `liaison serve` takes, and their NATS users.
fn services() -> [(&'static str, String); 5] {
    [
        ("audit", users::AUDIT.to_owned()),
        ("gateway", users::GATEWAY.to_owned()),
        ("cases", Service::Cases.user()),
        ("linkage", Service::Linkage.user()),
        ("alerts", Service::Alerts.user()),
    ]
}

/// Starts `liaison serve SERVICE` with a configuration written in `dir`.
fn spawn(
    config: &Config,
    session: &liaison_core::session::Session,
    service: &str,
    user: &str,
    dir: &Path,
) -> Result<tokio::process::Child> {
    let mut config = config.clone();
    let credentials = session.credentials(user, Path::new("<bench>"))?;
    config.nats.url = session.nats_url.clone();
    config.nats.user = credentials.user;
    config.nats.password = credentials.password;
    let path = dir.join(format!("{service}.toml"));
    let text = toml::to_string(&config).context("writing a service configuration")?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    let log = dir.join(format!("{service}.log"));
    let exe = std::env::current_exe().context("finding the liaison binary")?;
    let mut command = tokio::process::Command::new(exe);
    // The file is the whole configuration: no LIAISON_* variable of ours overrides it.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LIAISON_") {
            command.env_remove(name);
        }
    }
    command
        .arg("--config")
        .arg(&path)
        .args(["serve", service])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting liaison serve {service}"))
}

/// Drives `count` envelopes of each kind through the services run as
/// separate processes and reads their memory.
pub async fn measure(config: &Config, dir: &Path, count: usize) -> Result<Vec<Row>> {
    let plan = users::plan();
    let server = NatsServer::start(&ServerOptions {
        users: plan.clone(),
        ..ServerOptions::default()
    })?;
    let session = liaison_core::session::Session {
        nats_url: server.url(),
        users: plan
            .iter()
            .map(|u| (u.credentials.user.clone(), u.credentials.password.clone()))
            .collect(),
        telemetry: Default::default(),
    };
    let operator_credentials = session.credentials(users::OPERATOR, Path::new("<bench>"))?;
    let operator = connect(
        &server.url(),
        &operator_credentials,
        &Default::default(),
        users::OPERATOR,
    )
    .await?;
    let js = jetstream::new(operator);
    liaison_runtime::provision::provision(
        &js,
        &config.streams,
        &liaison_runtime::registry::Registry::load(&config.paths.registry)?,
    )
    .await?;
    let mut children = Vec::new();
    for (service, user) in services() {
        children.push((service, spawn(config, &session, service, &user, dir)?));
    }

    // Agencies log in through the gateway's auth callout: once it is up.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut senders = Vec::new();
    for agency in ["police", "school-a"] {
        let id = AgencyId::parse(agency)?;
        let pem =
            crate::keys::read_key(&Path::new(crate::keys::DEV_KEYS).join(format!("{agency}.pem")))?;
        let auth = liaison_client::NatsAuth::NKeySeedFile(crate::keys::nkey_path(
            Path::new(crate::keys::DEV_KEYS),
            agency,
        ));
        let client = loop {
            match AgencyClient::connect(
                &server.url(),
                &auth,
                id.clone(),
                &pem,
                &config.gateway.audience,
            )
            .await
            {
                Ok(client) => break client,
                Err(e) if Instant::now() > deadline => return Err(e.into()),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        senders.push(client);
    }
    // Ready once the gateway answers.
    let first = Kind::PoliceReferral.envelope("bench-process-ready");
    while senders[0].send(&first).await.is_err() {
        for (service, child) in &mut children {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "liaison serve {service} exited with {status} (log in {})",
                    dir.display()
                );
            }
        }
        if Instant::now() > deadline {
            bail!("the gateway run as its own process did not answer within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for kind in [Kind::PoliceReferral, Kind::SchoolReferral, Kind::Alert] {
        let sender = if kind.sender() == "police" {
            &senders[0]
        } else {
            &senders[1]
        };
        let ids: Vec<String> = (0..count)
            .map(|i| format!("proc-{}-{i:06}", kind.recipients()))
            .collect();
        pipeline::send_all(sender, kind, &ids).await?;
    }
    settle::settled(&js, Duration::from_secs(600)).await?;

    let server_pid = server
        .pid()
        .ok_or_else(|| anyhow!("nats-server is not running"))?;
    let (server_peak, server_now) = rss(server_pid)?;
    let mut rows = vec![Row::new(
        "memory",
        "nats-server (baseline)",
        Figure::Memory {
            peak: server_peak,
            current: server_now,
        },
        1.0,
    )];
    for (service, child) in &children {
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("liaison serve {service} has exited"))?;
        let (peak, current) = rss(pid)?;
        rows.push(
            Row::new(
                "memory",
                format!("liaison serve {service}"),
                Figure::Memory { peak, current },
                peak as f64 / server_peak.max(1) as f64,
            )
            .goal("≤ 64 MiB", peak <= GOAL_BYTES),
        );
    }
    for (_, mut child) in children {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    drop(server);
    Ok(rows)
}
