//! What the benchmarks share: the decision records they chain, publishing
//! them, and a clock that reads, beside wall time, the CPU time this process
//! (the services run in it) and its nats-server child used — on a shared
//! machine the CPU a record costs is steadier than how many go by a second.

use async_nats::HeaderMap;
use async_nats::jetstream;
use liaison_proto::v1::{AuditRecord, Operation};
use prost::Message as _;
use std::time::{Duration, Instant};

/// The `i`th decision record of a benchmark: a disclosure, as the gateway
/// records one.
pub fn record(i: u64) -> Vec<u8> {
    AuditRecord {
        record_id: format!("bench-{i}:disclosure:police"),
        operation: Operation::Disclosure as i32,
        agency: "school-a".into(),
        author: "school-a-dsl".into(),
        envelope_id: format!("bench-{i}"),
        recipients: vec!["police".into()],
        purpose: "safeguarding".into(),
        legal_basis: "DPA-2018-s35".into(),
        policy_ids: vec!["ISA-EDU-01/receive".into()],
        time: Some(liaison_core::time::timestamp_now()),
        ..Default::default()
    }
    .encode_to_vec()
}

/// `n` per second of `d`.
pub fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// Publishes `records` to `subject`, 256 in flight, each with the message id
/// `{prefix}-{i}` when a prefix is given.
pub async fn publish(
    js: &jetstream::Context,
    subject: &str,
    records: &[Vec<u8>],
    prefix: Option<&str>,
) -> anyhow::Result<()> {
    for (i, chunk) in records.chunks(256).enumerate() {
        let mut acks = Vec::with_capacity(chunk.len());
        for (j, r) in chunk.iter().enumerate() {
            let mut headers = HeaderMap::new();
            if let Some(prefix) = prefix {
                headers.insert("Nats-Msg-Id", format!("{prefix}-{}", i * 256 + j).as_str());
            }
            acks.push(
                js.publish_with_headers(subject.to_owned(), headers, r.clone().into())
                    .await?,
            );
        }
        for ack in acks {
            ack.await?;
        }
    }
    Ok(())
}

/// CPU time (user + system) of process `pid` ("self" for this one), from
/// `/proc` (Linux; zero elsewhere). Clock ticks are taken as 1/100 s.
fn cpu(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// The pid of this process's nats-server child, if any.
fn server_pid() -> Option<String> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    for task in tasks.flatten() {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for pid in children.split_whitespace() {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "nats-server" {
                return Some(pid.to_owned());
            }
        }
    }
    None
}

/// Wall time and CPU time from a start.
pub struct Clock {
    wall: Instant,
    client: Duration,
    server: Duration,
    server_pid: Option<String>,
}

/// What a stretch of work took.
#[derive(Debug, Clone, Copy)]
pub struct Took {
    pub wall: Duration,
    /// CPU of this process: the benchmark and the services.
    pub client: Duration,
    /// CPU of nats-server.
    pub server: Duration,
}

impl Took {
    /// CPU microseconds per item, this process and nats-server.
    pub fn cpu_per(&self, n: u64) -> (f64, f64) {
        let per = |d: Duration| d.as_secs_f64() * 1e6 / n.max(1) as f64;
        (per(self.client), per(self.server))
    }
}

impl Clock {
    pub fn start() -> Self {
        let server_pid = server_pid();
        Self {
            wall: Instant::now(),
            client: cpu("self"),
            server: server_pid.as_deref().map(cpu).unwrap_or_default(),
            server_pid,
        }
    }

    pub fn took(&self) -> Took {
        Took {
            wall: self.wall.elapsed(),
            client: cpu("self").saturating_sub(self.client),
            server: self
                .server_pid
                .as_deref()
                .map(cpu)
                .unwrap_or_default()
                .saturating_sub(self.server),
        }
    }
}
