//! Helpers for the business-alert suites: alerts and acknowledgements as the
//! police and partners send them, issuing an alert while the partners wait on
//! their inboxes (printing each partner's delivery time), what `liaison
//! alerts` shows, whether the alerts service has caught up with EVENTS, and
//! the escalations it raises through the gateway's internal door.

use crate::{eventually, referral};
use anyhow::{Result, bail};
use futures_util::StreamExt;
use liaison_alerts::board;
use liaison_client::AgencyClient;
use liaison_core::subjects;
use liaison_core::system::Service;
use liaison_proto::v1::alert_issued::ThreatLevel;
use liaison_proto::v1::envelope::Body;
use liaison_proto::v1::verdict::Outcome;
use liaison_proto::v1::{
    AlertAcknowledged, AlertEscalated, AlertIssued, Classification, Delivery, Envelope,
};
use liaison_runtime::fold::Cursor;
use liaison_runtime::users;
use liaison_system::system::System;
use prost::Message as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the suites wait for anything.
pub const WAIT: Duration = Duration::from_secs(30);

/// A police alert to `sectors` in `region`, with content the alerts service must not keep.
pub fn alert(id: &str, level: ThreatLevel, sectors: &[&str], region: &str) -> Envelope {
    Envelope {
        purpose: "protective-security".into(),
        legal_basis: "DPA-2018-s35".into(),
        author: "police-dsl".into(),
        classification: Classification::Official as i32,
        body: Some(Body::Alert(AlertIssued {
            threat_level: level as i32,
            sectors: sectors.iter().map(|s| (*s).to_owned()).collect(),
            region: region.into(),
            headline: "Vehicle used as a weapon: heighten protective security".into(),
            protective_advice: "Activate barriers; brief staff on Run Hide Tell".into(),
            location: "Oxford Street".into(),
        })),
        ..referral("police", id)
    }
}

/// `sender`'s acknowledgement `id` of the alert `alert_id`.
pub fn ack(sender: &str, id: &str, alert_id: &str) -> Envelope {
    Envelope {
        purpose: "protective-security".into(),
        legal_basis: "DPA-2018-s35".into(),
        author: format!("{sender}-dsl"),
        classification: Classification::Official as i32,
        in_reply_to: alert_id.into(),
        body: Some(Body::AlertAck(AlertAcknowledged {
            action: "actioned".into(),
        })),
        ..referral(sender, id)
    }
}

/// `list`, sorted.
pub fn sorted(list: &[String]) -> Vec<String> {
    let mut list = list.to_vec();
    list.sort();
    list
}

/// The (kind, envelope id) of each delivery, sorted.
pub fn kinds(deliveries: &[Delivery]) -> Vec<(String, String)> {
    let mut kinds: Vec<(String, String)> = deliveries
        .iter()
        .filter_map(|d| d.envelope.as_ref())
        .map(|e| (e.kind().to_owned(), e.id.clone()))
        .collect();
    kinds.sort();
    kinds
}

/// Sends `alert` as the police while each business partner in `partners`
/// already waits on its inbox; prints how long after the verdict each got it.
pub async fn issue_and_time(
    police: &AgencyClient,
    alert: &Envelope,
    partners: Vec<AgencyClient>,
) -> Result<(Vec<String>, Vec<AgencyClient>)> {
    let waiting: Vec<_> = partners
        .into_iter()
        .map(|client| {
            tokio::spawn(async move {
                let deliveries = client.inbox(1, Duration::from_secs(20)).await?;
                anyhow::Ok((client, deliveries, Instant::now()))
            })
        })
        .collect();
    let sent = Instant::now();
    let verdict = police.send(alert).await?;
    let decided = Instant::now();
    assert_eq!(verdict.outcome, Outcome::Accepted as i32, "{verdict:?}");
    let mut partners = vec![];
    for task in waiting {
        let (client, deliveries, received) = task.await??;
        let Some(delivery) = deliveries.first() else {
            bail!("{} did not receive the alert", client.agency());
        };
        assert_eq!(
            delivery.envelope.as_ref().map(|e| e.id.as_str()),
            Some(alert.id.as_str())
        );
        report(client.agency().as_str(), sent, decided, received);
        partners.push(client);
    }
    Ok((sorted(&verdict.recipients), partners))
}

/// Prints one partner's delivery time (`ALERT LATENCY` lines of the test log).
#[allow(clippy::print_stderr)] // the figure the partnership asks for: in the test log
pub fn report(partner: &str, sent: Instant, decided: Instant, received: Instant) {
    let from_verdict = received.saturating_duration_since(decided);
    eprintln!(
        "ALERT LATENCY {partner}: delivered {:.1} ms after the police sent it, {:.1} ms after the police verdict{}",
        received.duration_since(sent).as_secs_f64() * 1e3,
        from_verdict.as_secs_f64() * 1e3,
        if received < decided {
            " (before the verdict reached the police)"
        } else {
            ""
        }
    );
}

/// JetStream as the operator (who may read the `ALERTS` bucket).
pub async fn operator(system: &System) -> Result<async_nats::jetstream::Context> {
    Ok(async_nats::jetstream::new(
        system.connect_as(users::INSPECTOR).await?,
    ))
}

/// Waits until `liaison alerts --all` shows `id` as `probe` wants it.
pub async fn alert_row(
    system: &System,
    id: &str,
    what: &str,
    probe: impl Fn(&board::Row) -> bool,
) -> Result<board::Row> {
    let js = operator(system).await?;
    eventually(what, WAIT, || {
        let js = js.clone();
        let probe = &probe;
        async move {
            let alerts = board::read(&js).await?;
            let rows = board::rows(&alerts, liaison_alerts::now_ms(), true);
            Ok(rows.into_iter().find(|r| r.id == id && probe(r)))
        }
    })
    .await
}

/// Waits until the alerts service has applied every event in EVENTS.
pub async fn alerts_caught_up(system: &System) -> Result<()> {
    let js = operator(system).await?;
    let last = js
        .get_stream(subjects::EVENTS_STREAM)
        .await?
        .info()
        .await?
        .state
        .last_sequence;
    let cursor = Cursor::new(
        js.get_key_value(Service::Alerts.bucket()).await?,
        Service::Alerts,
    );
    eventually("the alerts service to catch up", WAIT, || {
        let cursor = &cursor;
        async move {
            Ok((liaison_runtime::fold::applied_through(cursor.get().await?) >= last).then_some(()))
        }
    })
    .await
}

/// Every escalation the alerts service raises through the gateway's internal
/// door, seen by the operator (who may read every subject).
pub async fn watch_raises(system: &System) -> Result<Arc<Mutex<Vec<String>>>> {
    let client = system.connect_as(users::INSPECTOR).await?;
    let mut requests = client
        .subscribe(subjects::internal(Service::Alerts))
        .await?;
    client.flush().await?;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let into = seen.clone();
    tokio::spawn(async move {
        let _client = client;
        while let Some(message) = requests.next().await {
            if let Ok(envelope) = Envelope::decode(message.payload.as_ref())
                && let Ok(mut seen) = into.lock()
            {
                seen.push(envelope.id);
            }
        }
    });
    Ok(seen)
}

/// How many escalations wait in the alerts service's outbox (in its bucket).
pub async fn outbox_len(system: &System) -> Result<usize> {
    let bucket = operator(system)
        .await?
        .get_key_value(Service::Alerts.bucket())
        .await?;
    let mut keys = bucket.keys().await?;
    let mut pending = 0;
    while let Some(key) = keys.next().await {
        if key?.starts_with("outbox.") {
            pending += 1;
        }
    }
    Ok(pending)
}

/// The envelope ids raised so far (see [`watch_raises`]).
pub fn raised(seen: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    seen.lock().map(|s| s.clone()).unwrap_or_default()
}

/// The escalation a delivery carries, if it carries one.
pub fn escalation_of(delivery: &Delivery) -> Option<(&Envelope, &AlertEscalated)> {
    let envelope = delivery.envelope.as_ref()?;
    match envelope.body.as_ref()? {
        Body::AlertEscalated(e) => Some((envelope, e)),
        _ => None,
    }
}
