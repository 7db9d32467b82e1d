//! Counting the operations a system performed *without* the ledger, to
//! compare with the records the ledger holds (DPA 2018 s.62: every
//! operation logged, once). What each operation is, is read from where it
//! happened: accepted envelopes from EVENTS, copies delivered from DELIVERY,
//! case changes from the cases service's own record (each case counts the
//! envelopes applied to it), acknowledgements and escalations from the
//! alerts service's board, refusals and consultations from the answers the
//! test itself received ([`Tally`]; [`until_accepted`] and [`consult`] tally
//! as they go).

use crate::repo_root;
use anyhow::{Result, bail, ensure};
use futures_util::StreamExt as _;
use liaison_audit::consult::{AUDIENCE, ConsultReply, ConsultRequest};
use liaison_client::AgencyClient;
use liaison_core::subjects;
use liaison_core::system::Service;
use liaison_proto::v1::verdict::Outcome;
use liaison_proto::v1::{AuditRecord, Decision, Delivery, Envelope, EnvelopeAccepted, Operation};
use liaison_runtime::users;
use liaison_system::system::System;
use prost::Message as _;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Records (or operations) by operation, decision and the service that
/// decided, e.g. `("disclosure", "delivered", "gateway")`.
pub type Counts = BTreeMap<(String, String, String), usize>;

fn key(operation: i32, decision: i32, service: &str) -> (String, String, String) {
    let short = |name: &str, prefix: &str| name.trim_start_matches(prefix).to_ascii_lowercase();
    let operation = Operation::try_from(operation).unwrap_or_default();
    let decision = Decision::try_from(decision).unwrap_or_default();
    (
        short(operation.as_str_name(), "OPERATION_"),
        short(decision.as_str_name(), "DECISION_"),
        service.to_owned(),
    )
}

/// The ledger's records, counted as [`Counts`].
pub fn count_records(records: &[AuditRecord]) -> Counts {
    let mut counts = Counts::new();
    for r in records {
        *counts
            .entry(key(r.operation, r.decision, &r.service))
            .or_default() += 1;
    }
    counts
}

/// Operations the test saw answered: refusals, case queries, auditor
/// consultations.
#[derive(Debug, Default)]
pub struct Tally(pub Counts);

impl Tally {
    pub fn add(&mut self, operation: Operation, decision: Decision, service: &str) {
        *self
            .0
            .entry(key(operation as i32, decision as i32, service))
            .or_default() += 1;
    }
}

/// Sends `envelope` until it is accepted (or was already), tallying every
/// refusal on the way: each one is an operation too.
pub async fn until_accepted(
    client: &AgencyClient,
    envelope: &Envelope,
    tally: &mut Tally,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut ticks = tokio::time::interval(Duration::from_millis(50));
    loop {
        ticks.tick().await;
        let verdict = client.send(envelope).await?;
        match Outcome::try_from(verdict.outcome) {
            Ok(Outcome::Accepted | Outcome::Duplicate) => return Ok(()),
            Ok(Outcome::Refused) => tally.add(Operation::Collection, Decision::Refused, "gateway"),
            _ => anyhow::bail!("no verdict for {}: {verdict:?}", envelope.id),
        }
        ensure!(Instant::now() < deadline, "{} never accepted", envelope.id);
    }
}

/// An auditor's consultation request, as `liaison audit` sends it, signed
/// with the key in `key` (`deploy/…`); tallies the answer.
pub async fn consult(system: &System, action: &str, key: &str, tally: &mut Tally) -> Result<bool> {
    let (_, reply) = consultation(system, action, key).await?;
    let decision = if reply.granted {
        Decision::Accepted
    } else {
        Decision::Refused
    };
    tally.add(Operation::Consultation, decision, "audit");
    Ok(reply.granted)
}

/// An auditor's consultation request, as `liaison audit` sends it, signed
/// with the key in `key`: the auditor's connection and the service's answer.
pub async fn consultation(
    system: &System,
    action: &str,
    key: &str,
) -> Result<(async_nats::Client, ConsultReply)> {
    consultation_by(system, "ig-officer", action, key).await
}

/// [`consultation`] by the auditor `auditor`, logged in as themselves.
pub async fn consultation_by(
    system: &System,
    auditor: &str,
    action: &str,
    key: &str,
) -> Result<(async_nats::Client, ConsultReply)> {
    let pem = std::fs::read_to_string(repo_root().join(key))?;
    let signer = liaison_core::tokens::Signer::from_pem(&pem, None).map_err(anyhow::Error::msg)?;
    let token = signer
        .mint(
            auditor,
            "a-person",
            AUDIENCE,
            liaison_core::time::unix_now(),
            300,
        )
        .map_err(anyhow::Error::msg)?;
    let request = ConsultRequest {
        auditor: auditor.into(),
        purpose: "log-review".into(),
        action: action.into(),
        scope: String::new(),
    };
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(subjects::TOKEN_HEADER, token.as_str());
    let client = crate::auditor(system, auditor).await?;
    let answer = client
        .request_with_headers(
            subjects::CONSULT_REQUEST,
            headers,
            serde_json::to_vec(&request)?.into(),
        )
        .await?;
    let reply: ConsultReply = serde_json::from_slice(&answer.payload)?;
    Ok((client, reply))
}

/// The operations `system` performed, from EVENTS, DELIVERY and the case
/// record, with what the test saw answered (`tally`), and the deliveries
/// (envelope id, recipient, labels withheld).
pub async fn performed(system: &System, tally: &Tally) -> Result<(Counts, Vec<Delivery>)> {
    let js = async_nats::jetstream::new(system.connect_as(users::INSPECTOR).await?);
    let keys = system.keyring().await?;
    let mut counts = tally.0.clone();
    let mut add = |operation: Operation, decision: Decision, service: &str| {
        *counts
            .entry(key(operation as i32, decision as i32, service))
            .or_default() += 1;
    };
    for (_, payload) in crate::committed(&js, &keys).await? {
        let envelope = EnvelopeAccepted::decode(payload.as_slice())?
            .envelope
            .unwrap_or_default();
        // What the sender did, in s.62's words.
        let operation = match envelope.kind() {
            "erasure_confirmed" => Operation::Erasure,
            "correction" => Operation::Alteration,
            _ => Operation::Collection,
        };
        add(operation, Decision::Accepted, "gateway");
        // The linkage service raises an event for each match it combined.
        if Service::of_sender(&envelope.sender_agency) == Some(Service::Linkage) {
            add(Operation::Combination, Decision::Accepted, "linkage");
        }
    }
    let mut deliveries = Vec::new();
    for (_, payload) in crate::deliveries(&js, &keys).await? {
        add(Operation::Disclosure, Decision::Delivered, "gateway");
        deliveries.push(Delivery::decode(payload.as_slice())?);
    }
    let cases = js.get_key_value(Service::Cases.bucket()).await?;
    let mut keys = cases.keys().await?;
    while let Some(key) = keys.next().await {
        let key = key?;
        if !key.starts_with("case.") {
            continue;
        }
        let Some(value) = cases.get(&key).await? else {
            continue;
        };
        let case: serde_json::Value = serde_json::from_slice(&value)?;
        for _ in 0..case["events"].as_u64().unwrap_or(0) {
            add(Operation::Alteration, Decision::Accepted, "cases");
        }
    }
    // The alerts service's own board: each acknowledgement it counted, and
    // each escalation it raised (combining who has not acknowledged).
    let alerts = liaison_alerts::board::read(&js).await?;
    for row in liaison_alerts::board::rows(&alerts, liaison_alerts::now_ms(), true) {
        for _ in 0..row.acknowledged {
            add(Operation::Collection, Decision::Accepted, "alerts");
        }
        for _ in 0..row.escalations {
            add(Operation::Combination, Decision::Accepted, "alerts");
        }
    }
    Ok((counts, deliveries))
}

/// Waits until every service has taken everything in EVENTS and raised
/// what it had to, and every decision is chained, twice over with nothing
/// new in between (what the services raise goes round again).
pub async fn quiet(system: &System, timeout: Duration) -> Result<()> {
    let js = async_nats::jetstream::new(system.connect_as(users::INSPECTOR).await?);
    let deadline = Instant::now() + timeout;
    let mut ticks = tokio::time::interval(Duration::from_millis(50));
    let mut seen = None;
    loop {
        ticks.tick().await;
        system.wait_until_settled(timeout).await?;
        let events = js
            .get_stream(subjects::EVENTS_STREAM)
            .await?
            .info()
            .await?
            .state
            .last_sequence;
        let decisions = js
            .get_stream(subjects::DECISIONS_STREAM)
            .await?
            .info()
            .await?
            .state
            .last_sequence;
        let mut behind = false;
        for service in [Service::Cases, Service::Linkage, Service::Alerts] {
            let bucket = js.get_key_value(service.bucket()).await?;
            let cursor: u64 = bucket
                .get("meta.cursor")
                .await?
                .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok())
                .unwrap_or(0);
            // Events waiting in its outbox are still to be raised.
            let mut keys = bucket.keys().await?;
            let mut raising = false;
            while let Some(key) = keys.next().await {
                raising |= key?.starts_with("outbox.");
            }
            behind |= liaison_runtime::fold::applied_through(cursor) < events || raising;
        }
        let now = Some((events, decisions));
        if !behind && seen == now {
            return Ok(());
        }
        seen = if behind { None } else { now };
        if Instant::now() > deadline {
            bail!("the system was still busy after {timeout:?}");
        }
    }
}
