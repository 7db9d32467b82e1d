//! The end-to-end test harness: a whole Liaison system per test, on a real
//! nats-server started on a random port with a temporary JetStream store
//! (killed when the system is dropped), the real services in-process, and
//! helpers that wait by polling for a condition with a deadline. Every
//! system's gateway also opens its HTTPS door on a free port ([`https`]).

pub mod alerts;
pub mod bench;
pub mod browser;
pub mod casework;
pub mod cluster;
pub mod https;
pub mod nats_process;
pub mod observed;

pub mod attacks;

pub mod otlp;

pub mod traces;

pub mod fault;

pub mod fault_process;

pub mod operations;

use anyhow::{Result, bail};
use liaison_audit::inspect::Report;
use liaison_audit::verify::verify;
use liaison_client::AgencyClient;
use liaison_core::AgencyId;
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::verdict::Outcome;
use liaison_proto::v1::{
    AuditRecord, Classification, Decision, Delivery, Envelope, Operation, Person, ReferralMade,
};
use liaison_runtime::config::Config;
use liaison_runtime::users;
use liaison_system::system::{System, UpOptions};
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The repository root (for deploy/ files).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The development configuration, with test-sized limits.
pub fn config() -> Config {
    let mut config = Config::default();
    config.paths.registry = repo_root().join("deploy/agencies/registry.toml");
    config.paths.policies = repo_root().join("deploy/policies");
    config.audit.checkpoint_key = repo_root().join("deploy/audit/dev-checkpoint-key.pem");
    config.data.kek_file = repo_root().join("deploy/keys/dev-kek.toml");
    config.audit.auditors = repo_root().join("deploy/audit/auditors.toml");
    config.paths.operators = repo_root().join("deploy/operators/operators.toml");
    config.gateway.max_envelope_bytes = 64 * 1024;
    // A killed service's unacknowledged messages come back quickly.
    config.streams.ack_wait_secs = 2;
    let pki = https::pki();
    config.https.listen = "127.0.0.1:0".into();
    config.https.cert = pki.cert.clone();
    config.https.key = pki.key.clone();
    config
}

/// A client of `system`'s HTTPS door, trusting the harness CA.
pub fn https_client(system: &System) -> Result<https::Https> {
    let Some(addr) = system.https_addr() else {
        bail!("the gateway's HTTPS door is not open");
    };
    https::Https::new(addr)
}

/// Starts a whole system on a fresh nats-server.
pub async fn start() -> Result<System> {
    start_with(config()).await
}

pub async fn start_with(config: Config) -> Result<System> {
    test_log();
    System::start(
        config,
        UpOptions {
            inspector: true,
            ..UpOptions::default()
        },
    )
    .await
}

/// The log filter `TEST_LOG` asks for (see [`log_filter`]).
pub fn test_log_filter() -> Option<String> {
    log_filter(std::env::var("TEST_LOG").ok().as_deref())
}

/// A `TEST_LOG` value as a log filter: `1` or `true` means `info`; any
/// other non-empty value but `0` is an `EnvFilter` directive such as
/// `liaison_gateway=debug,warn`; unset, empty or `0`: no logs.
pub fn log_filter(value: Option<&str>) -> Option<String> {
    match value?.trim() {
        "" | "0" => None,
        v if v == "1" || v.eq_ignore_ascii_case("true") => Some("info".into()),
        v => Some(v.to_owned()),
    }
}

/// Shows the services' logs when `TEST_LOG` is set, through the test
/// writer (so `cargo test` shows them only for a failing test, and nextest
/// keeps each test's own). Called by the harness entry points; a test that
/// exports spans ([`otlp::exporting`]) installs its own subscriber, with the
/// same filter, and must call that first.
pub fn test_log() {
    static ONCE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        if let Some(filter) = test_log_filter() {
            // Fails only when a subscriber is already installed (span
            // export's, which logs too): then that one shows the logs.
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
    });
}

/// An agency's development signing key.
pub fn key_pem(agency: &str) -> Result<String> {
    Ok(std::fs::read_to_string(
        repo_root().join(format!("deploy/agencies/dev-keys/{agency}.pem")),
    )?)
}

/// An agency's development NKey (its NATS login, registered in its
/// `nats_keys`).
pub fn nkey(agency: &str) -> liaison_client::NatsAuth {
    liaison_client::NatsAuth::NKeySeedFile(nkey_path(agency))
}

/// Where an agency's development NKey seed is.
pub fn nkey_path(agency: &str) -> PathBuf {
    repo_root().join(format!("deploy/agencies/dev-keys/{agency}.nk"))
}

/// Connects as the auditor `id` (deploy/audit/auditors.toml) with their own
/// development NKey, through the gateway's auth callout (retried while a
/// gateway just started does not answer yet).
pub async fn auditor(system: &System, id: &str) -> Result<async_nats::Client> {
    let seed = repo_root().join(format!("deploy/audit/dev-auditor-keys/{id}.nk"));
    let name = liaison_runtime::auditors::nats_name(&AgencyId::parse(id)?);
    let (tls, url) = (system.config.nats.tls(), system.url());
    let connect = || liaison_core::connect::connect_nkey(&url, &seed, &name, &tls);
    let connected = eventually(
        &format!("auditor {id}'s login"),
        Duration::from_secs(10),
        || async { Ok(connect().await.ok()) },
    )
    .await;
    match connected {
        Ok(client) => Ok(client),
        Err(_) => Ok(connect().await?),
    }
}

/// Whether the tests run in CI (`CI` set and not false).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Whether `python3` runs here (the Python example and the hostile-agency
/// suite need it; in CI its absence fails them).
pub fn python_present() -> bool {
    std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Every message of `stream` stored when asked, in order, with its
/// sequence, read with `js`'s rights.
async fn every_message(
    js: &async_nats::jetstream::Context,
    stream: &str,
) -> Result<Vec<(u64, async_nats::jetstream::Message)>> {
    use futures_util::StreamExt as _;
    let mut stream = js
        .get_stream(stream)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let state = stream
        .info()
        .await
        .map_err(|e| anyhow::anyhow!(e))?
        .state
        .clone();
    let mut out = Vec::new();
    if state.messages == 0 {
        return Ok(out);
    }
    let reader = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let mut read = reader.messages().await.map_err(|e| anyhow::anyhow!(e))?;
    while let Some(message) = read.next().await {
        let message = message.map_err(|e| anyhow::anyhow!(e))?;
        let seq = message.info().map_err(anyhow::Error::msg)?.stream_sequence;
        out.push((seq, message));
        if seq >= state.last_sequence {
            break;
        }
    }
    Ok(out)
}

/// Every commit in EVENTS (ADR 0024), in order, with its stream sequence,
/// read with `js`'s rights.
pub async fn commits(
    js: &async_nats::jetstream::Context,
) -> Result<Vec<(u64, liaison_proto::v1::Commit)>> {
    use prost::Message as _;
    every_message(js, liaison_core::subjects::EVENTS_STREAM)
        .await?
        .into_iter()
        .map(|(seq, m)| Ok((seq, liaison_proto::v1::Commit::decode(m.payload.as_ref())?)))
        .collect()
}

/// Every envelope committed in EVENTS, in order: its scoped id (`SENDER/ID`)
/// and its `EnvelopeAccepted`, opened with `keys`.
pub async fn committed(
    js: &async_nats::jetstream::Context,
    keys: &liaison_runtime::seal::Keyring,
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for (_, commit) in commits(js).await? {
        for entry in commit.envelopes {
            let (_, plain) = keys
                .open(
                    &liaison_core::subjects::committed(&entry.scoped_id),
                    &entry.event,
                )
                .await?;
            out.push((entry.scoped_id, plain));
        }
    }
    Ok(out)
}

/// One copy stored in DELIVERY, in a pack (ADR 0024).
#[derive(Debug, Clone)]
pub struct StoredCopy {
    /// The inbox it is in.
    pub agency: String,
    pub stream_seq: u64,
    /// Its number in the inbox.
    pub number: u64,
    pub copy: liaison_proto::v1::PackedCopy,
}

/// Every copy in DELIVERY, in order, read with `js`'s rights.
pub async fn copies_in_delivery(js: &async_nats::jetstream::Context) -> Result<Vec<StoredCopy>> {
    let mut out = Vec::new();
    for (seq, message) in every_message(js, liaison_core::subjects::DELIVERY_STREAM).await? {
        let agency = message
            .subject
            .as_str()
            .strip_prefix("liaison.deliver.")
            .and_then(|rest| rest.split('.').next())
            .unwrap_or_default()
            .to_owned();
        let (first, _) = message
            .headers
            .as_ref()
            .map(liaison_runtime::inbox::numbers)
            .unwrap_or_default();
        let copies =
            liaison_runtime::inbox::copies(&message.payload).map_err(anyhow::Error::msg)?;
        for (number, copy) in (first..).zip(copies) {
            out.push(StoredCopy {
                agency: agency.clone(),
                stream_seq: seq,
                number,
                copy,
            });
        }
    }
    Ok(out)
}

/// Every copy in DELIVERY, opened with `keys`: its inbox and the `Delivery`.
pub async fn deliveries(
    js: &async_nats::jetstream::Context,
    keys: &liaison_runtime::seal::Keyring,
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for stored in copies_in_delivery(js).await? {
        let agency = liaison_core::AgencyId::parse(&stored.agency)?;
        let (_, plain) = keys
            .open(
                &liaison_core::subjects::copy_sealed_to(&agency, &stored.copy.scoped_id),
                &stored.copy.copy,
            )
            .await?;
        out.push((stored.agency, plain));
    }
    Ok(out)
}

/// Pulls one message from the router's durable consumer of EVENTS with
/// `js`'s rights (which only the gateway has: tests check that others are
/// refused).
pub async fn pull_from_router(js: &async_nats::jetstream::Context) -> Result<()> {
    use futures_util::StreamExt as _;
    let router = js
        .get_stream(liaison_core::subjects::EVENTS_STREAM)
        .await
        .map_err(|e| anyhow::anyhow!(e))?
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>(
            liaison_core::subjects::ROUTER_CONSUMER,
        )
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let mut batch = router
        .fetch()
        .max_messages(1)
        .messages()
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    match batch.next().await {
        Some(m) => m.map(|_| ()).map_err(|e| anyhow::anyhow!(e)),
        None => Err(anyhow::anyhow!("no message")),
    }
}

/// A privileged connection (the inspector's) that speaks on the ingress
/// subject of `agency` — any text, valid id or not — with that agency's
/// inbox prefix, as only the agency itself could: the gateway answers only
/// in the inbox of the agency its subject names (ADR 0021).
pub async fn speaking_for(system: &System, agency: &str) -> Result<async_nats::Client> {
    let credentials = system.credentials(liaison_runtime::users::INSPECTOR)?;
    Ok(async_nats::ConnectOptions::with_user_and_password(
        credentials.user.clone(),
        credentials.password.expose().to_owned(),
    )
    .custom_inbox_prefix(liaison_core::subjects::inbox_prefix(agency))
    .connect(system.url())
    .await?)
}

/// Connects as `agency` with its own NKey and signing key. Agencies log in
/// through a gateway (the auth callout): a gateway just started may not
/// answer yet, so a refused login is tried again for up to 10 s.
pub async fn agency(system: &System, agency: &str) -> Result<AgencyClient> {
    let logged_in = eventually(
        &format!("{agency}'s login"),
        Duration::from_secs(10),
        || async {
            match agency_once(system, agency).await {
                Ok(client) => Ok(Some(client)),
                Err(e) if format!("{e:#}").contains("did not let") => Ok(None),
                Err(e) => Err(e),
            }
        },
    )
    .await;
    match logged_in {
        Ok(client) => Ok(client),
        // Still refused: the refusal itself says why.
        Err(_) => agency_once(system, agency).await,
    }
}

/// [`agency`], trying to log in once.
pub async fn agency_once(system: &System, agency: &str) -> Result<AgencyClient> {
    let id = AgencyId::parse(agency)?;
    let client = AgencyClient::connect(
        &system.url(),
        &nkey(agency),
        id,
        &key_pem(agency)?,
        &system.config.gateway.audience,
    )
    .await?;
    Ok(client.with_verdict_timeout(Duration::from_secs(3)))
}

/// Polls `probe` every 20 ms until it returns `Some`, or fails after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut ticks = tokio::time::interval(Duration::from_millis(20));
    loop {
        ticks.tick().await;
        if let Some(value) = probe().await? {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
    }
}

/// Reads `agency`'s inbox until `expected` deliveries arrived, then checks
/// that nothing more comes.
pub async fn inbox_exactly(client: &AgencyClient, expected: usize) -> Result<Vec<Delivery>> {
    let mut all = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while all.len() < expected {
        if Instant::now() > deadline {
            bail!(
                "{} received {} of {expected} deliveries",
                client.agency(),
                all.len()
            );
        }
        all.extend(
            client
                .inbox(expected - all.len(), Duration::from_millis(200))
                .await?,
        );
    }
    let extra = client.inbox(100, Duration::from_millis(300)).await?;
    if !extra.is_empty() {
        bail!(
            "{} received {} deliveries more than {expected}",
            client.agency(),
            extra.len()
        );
    }
    Ok(all)
}

/// Waits until every event is routed and every decision chained, then
/// verifies the ledger as the auditor, returning the report and the records
/// of shares (the policy-change records each gateway start adds are counted
/// in the report, left out of the records: see [`ledger_all`]).
pub async fn ledger(system: &System) -> Result<(Report, Vec<AuditRecord>)> {
    let (report, mut records) = ledger_all(system).await?;
    records.retain(|r| r.operation != Operation::PolicyChange as i32);
    Ok((report, records))
}

/// [`ledger`], with every record.
pub async fn ledger_all(system: &System) -> Result<(Report, Vec<AuditRecord>)> {
    system.wait_until_settled(Duration::from_secs(30)).await?;
    // The audit service's own rights: no consultation record to count.
    let auditor = async_nats::jetstream::new(system.connect_as(users::AUDIT).await?);
    let mut records = Vec::new();
    let verifier = liaison_audit::signer(&system.config)?.verifier();
    let report = verify(&auditor, &verifier, |_, record| {
        records.push(record.clone())
    })
    .await?;
    Ok((report, records))
}

/// The subject token of the child in [`referral`]`(_, id)`: one child per
/// referral id, so that referrals of different tests' ids are not taken by
/// the linkage service for one person referred twice.
pub fn test_token(id: &str) -> String {
    let id: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("tok-test-{id}")
}

/// A school's referral of a child, with health and education notes.
pub fn referral(sender: &str, id: &str) -> Envelope {
    Envelope {
        id: id.into(),
        sender_agency: sender.into(),
        author: format!("{sender}-dsl"),
        sent_at: Some(liaison_core::time::timestamp_now()),
        classification: Classification::OfficialSensitive as i32,
        handling_caveats: vec![],
        purpose: "safeguarding".into(),
        legal_basis: "CTSA-2015-s26".into(),
        case_id: String::new(),
        traceparent: String::new(),
        addressees: vec![],
        in_reply_to: String::new(),
        body: Some(Body::Referral(ReferralMade {
            subject: Some(Person {
                token: test_token(id),
                full_name: "Alex Example".into(),
                date_of_birth: "2010-04-12".into(),
                address: "12 Demo Street".into(),
                category: "person at risk".into(),
            }),
            source: "school".into(),
            concern: "Shared extremist material".into(),
            risk_indicators: vec!["online radicalisation".into()],
            health_notes: "Under CAMHS".into(),
            education_notes: "Attendance falling".into(),
            ..Default::default()
        })),
    }
}

/// The referral body of a delivery, if it is one.
pub fn referral_of(delivery: &Delivery) -> Option<&ReferralMade> {
    match delivery.envelope.as_ref()?.body.as_ref()? {
        Body::Referral(r) => Some(r),
        _ => None,
    }
}

/// Signs arbitrary `claims` with an agency's key (EdDSA), for hostile-token tests.
pub fn sign(agency_key_of: &str, claims: &serde_json::Value) -> Result<String> {
    let signer = liaison_core::tokens::Signer::from_pem(&key_pem(agency_key_of)?, None)
        .map_err(|e| anyhow::anyhow!(e))?;
    signer.sign(claims).map_err(|e| anyhow::anyhow!(e))
}

/// A sender sending `count` referrals one after another, each retried with
/// the same id until the gateway answers; counts the answered ones as it goes.
pub struct Burst {
    pub answered: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<Result<Vec<String>>>,
}

impl Burst {
    pub fn start(school: AgencyClient, prefix: &str, count: usize) -> Self {
        use std::sync::atomic::Ordering;
        let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = answered.clone();
        let prefix = prefix.to_owned();
        let task = tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for n in 0..count {
                let envelope = referral(school.agency().as_str(), &format!("{prefix}-{n:04}"));
                let verdict = school
                    .send_until_answered(&envelope, Duration::from_secs(60))
                    .await?;
                let ok = [Outcome::Accepted as i32, Outcome::Duplicate as i32];
                anyhow::ensure!(ok.contains(&verdict.outcome), "{verdict:?}");
                acknowledged.push(envelope.id);
                counter.fetch_add(1, Ordering::SeqCst);
            }
            Ok(acknowledged)
        });
        Self { answered, task }
    }

    /// Waits until at least `n` envelopes were answered.
    pub async fn until_answered(&self, n: usize) -> Result<()> {
        let answered = self.answered.clone();
        eventually("answers", Duration::from_secs(30), move || {
            let done = answered.load(std::sync::atomic::Ordering::SeqCst);
            async move { Ok((done >= n).then_some(())) }
        })
        .await
    }

    /// The ids acknowledged, once the burst is over.
    pub async fn finish(self) -> Result<Vec<String>> {
        self.task.await?
    }
}

/// Checks that `recipient` received each of `expected` exactly once.
pub async fn each_delivered_once(recipient: &AgencyClient, expected: &[String]) -> Result<()> {
    let ids: Vec<String> = inbox_exactly(recipient, expected.len())
        .await?
        .into_iter()
        .filter_map(|d| d.envelope.map(|e| e.id))
        .collect();
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    if unique.len() != ids.len() {
        bail!("{} received duplicates", recipient.agency());
    }
    if unique != expected.iter().collect() {
        bail!("{} missed acknowledged envelopes", recipient.agency());
    }
    Ok(())
}

/// Accepted collections and disclosures in the ledger, after checking it is intact.
pub async fn ledger_counts(system: &System) -> Result<(usize, usize)> {
    let (report, records) = ledger(system).await?;
    if !report.intact() {
        bail!("ledger not intact: {report:?}");
    }
    let collections = records
        .iter()
        .filter(|r| {
            r.operation == Operation::Collection as i32 && r.decision == Decision::Accepted as i32
        })
        .count();
    let disclosures = records
        .iter()
        .filter(|r| r.operation == Operation::Disclosure as i32)
        .count();
    Ok((collections, disclosures))
}

/// Asserts `verdict` refuses with `code` and a reason that mentions `mentions`;
/// `what` names the case in the failure message.
pub fn assert_refused(
    verdict: &liaison_proto::v1::Verdict,
    code: &str,
    mentions: &str,
    what: &str,
) {
    assert_eq!(
        verdict.outcome,
        Outcome::Refused as i32,
        "{what}: {verdict:?}"
    );
    assert_eq!(verdict.code, code, "{what}: {verdict:?}");
    assert!(
        verdict.reason.contains(mentions),
        "{what}: reason {:?} should mention {mentions:?}",
        verdict.reason
    );
}

/// A plain-HTTP `GET path` of a service's operations listener: the status
/// code and the body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await?;
    let reply = String::from_utf8(reply)?;
    let Some((head, body)) = reply.split_once("\r\n\r\n") else {
        bail!("no HTTP reply from {addr}{path}: {reply:?}");
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_default();
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    if chunked {
        return Ok((status, dechunk(body)?));
    }
    Ok((status, body.to_owned()))
}

/// The body of a chunked HTTP/1.1 reply (nats-server's monitoring pages
/// are sent chunked once they are large, e.g. `/varz`).
fn dechunk(mut rest: &str) -> Result<String> {
    let mut body = String::new();
    loop {
        let Some((size, after)) = rest.split_once("\r\n") else {
            bail!("a chunked reply ends without its last chunk");
        };
        let size = usize::from_str_radix(size.split(';').next().unwrap_or_default().trim(), 16)?;
        if size == 0 {
            return Ok(body);
        }
        let chunk = after
            .get(..size)
            .ok_or_else(|| anyhow::anyhow!("a chunk is shorter than its size {size}"))?;
        body.push_str(chunk);
        rest = after
            .get(size..)
            .unwrap_or_default()
            .trim_start_matches("\r\n");
    }
}

/// The value of one series in a Prometheus text page (`series` exactly as
/// rendered, labels included), if present.
pub fn metric(page: &str, series: &str) -> Option<f64> {
    page.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Records, as the cases service will, that `participants` (the first the
/// owner) take part in `case`.
pub async fn set_participants(system: &System, case: &str, participants: &[&str]) -> Result<()> {
    let operator = async_nats::jetstream::new(system.connect_as(users::INSPECTOR).await?);
    let participants = participants
        .iter()
        .map(|a| AgencyId::parse(a))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(owner) = participants.first().cloned() else {
        bail!("a case needs an owner");
    };
    liaison_core::participation::Store::open(&operator)
        .await?
        .put(
            case,
            &liaison_core::participation::Participation {
                owner,
                participants,
                status: 0,
            },
        )
        .await?;
    Ok(())
}

/// A small deterministic random source (xorshift) for hostile-input tests:
/// a failure replays from its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}
