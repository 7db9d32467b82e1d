//! The alerts service's state and everything that changes it: events folded
//! from EVENTS (alerts, acknowledgements, the echoes of its own escalations),
//! escalations queued when due, the outbox raised through the gateway.
//!
//! Folding is idempotent (an event applied twice changes nothing the second
//! time), so the cursor may lag behind what is stored: after a crash the
//! events since the cursor are applied again. For each event the decision
//! record is published first, then the alert stored, then memory changed: an
//! event whose step failed is applied again whole, and a record already
//! published is de-duplicated on its id.

use crate::alert::{Alert, accepted_ms, escalation_id};
use crate::escalation::Policy;
use crate::metrics::Metrics;
use crate::records::{self, Recorder};
use crate::{AlertsError, store};
use async_nats::jetstream::kv;
use liaison_core::AgencyId;
use liaison_core::NatsContext as _;
use liaison_core::system::Service;
use liaison_core::trace::TraceContext;
use liaison_runtime::fold::{Event, Outbox};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tracing::{error, info};

/// The alerts known, and how to keep and escalate them.
/// The registered business partners, as the live registry says now.
pub type Partners = Arc<std::sync::RwLock<BTreeSet<AgencyId>>>;

pub struct Tracker {
    store: kv::Store,
    alerts: BTreeMap<String, Alert>,
    /// Registered business partners: they must acknowledge the alerts they receive.
    business: Partners,
    recorder: Recorder,
    outbox: Outbox,
    policy: Policy,
    /// Alerts older than this (ms) are forgotten: their copies and receipts
    /// have expired, so nobody can acknowledge them any more.
    retention_ms: i64,
    metrics: Arc<Metrics>,
}

impl Tracker {
    /// Loads the alerts and the outbox from the bucket.
    pub async fn load(
        store: kv::Store,
        business: Partners,
        recorder: Recorder,
        policy: Policy,
        retention_ms: i64,
        metrics: Arc<Metrics>,
    ) -> Result<Self, AlertsError> {
        let alerts = store::load(&store).await?;
        let outbox = Outbox::load(store.clone(), Service::Alerts).await?;
        let tracker = Self {
            store,
            alerts,
            business,
            recorder,
            outbox,
            policy,
            retention_ms,
            metrics,
        };
        tracker.count_outstanding();
        Ok(tracker)
    }

    /// How many alerts are known.
    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }

    fn count_outstanding(&self) {
        let outstanding = self.alerts.values().filter(|a| a.outstanding()).count();
        self.metrics.outstanding.set(&[], outstanding as u64);
    }

    async fn keep(&mut self, alert: Alert) -> Result<(), AlertsError> {
        store::put(&self.store, &alert).await?;
        self.alerts.insert(alert.id.clone(), alert);
        self.count_outstanding();
        Ok(())
    }

    async fn publish(&self, record: liaison_proto::v1::AuditRecord) -> Result<(), AlertsError> {
        self.recorder
            .publish(&record)
            .await
            .nats(format!("decision record {}", record.record_id))
            .map_err(AlertsError::from)
    }

    /// Applies one event; `record`: publish the decision records it causes
    /// (not when rebuilding past the de-duplication window: they were
    /// published when the event was first applied); `context`: the trace
    /// context of the span it is applied in (an alert's escalations continue
    /// it). Whether state changed.
    pub async fn apply(
        &mut self,
        event: &Event,
        record: bool,
        now_ms: i64,
        context: Option<TraceContext>,
    ) -> Result<bool, AlertsError> {
        let envelope = event.envelope();
        let at_ms = accepted_ms(&event.accepted);
        match envelope.kind() {
            "alert" => {
                if self.alerts.contains_key(&envelope.id)
                    || now_ms.saturating_sub(at_ms) > self.retention_ms
                {
                    return Ok(false);
                }
                let issued = {
                    let business = match self.business.read() {
                        Ok(set) => set,
                        Err(poisoned) => poisoned.into_inner(),
                    };
                    Alert::issued(event.seq, &event.accepted, |a| business.contains(a))
                };
                let Some(mut alert) = issued else {
                    return Ok(false);
                };
                alert.traceparent = context.map(|c| c.parent.to_string()).unwrap_or_default();
                info!(alert_id = %alert.id, business = alert.must_acknowledge.len(), "Alert tracked");
                self.keep(alert).await?;
                Ok(true)
            }
            "alert_ack" => {
                let Some(mut alert) = self
                    .alerts
                    .get(liaison_core::ids::replied_id(&envelope.in_reply_to))
                    .cloned()
                else {
                    return Ok(false);
                };
                let changed = alert.acknowledge(envelope, at_ms);
                if record {
                    self.publish(records::acknowledgement(&alert, envelope, at_ms))
                        .await?;
                    self.metrics.acknowledgements.inc(&[]);
                }
                if changed {
                    info!(alert_id = %alert.id, agency = %envelope.sender_agency, "Alert acknowledged");
                    self.keep(alert).await?;
                }
                Ok(changed)
            }
            "alert_escalated" if envelope.sender_agency == Service::Alerts.sender().as_str() => {
                let mut changed = false;
                if let Some(mut alert) = self
                    .alerts
                    .get(liaison_core::ids::replied_id(&envelope.in_reply_to))
                    .cloned()
                    && alert.escalated(envelope, at_ms)
                {
                    if record {
                        self.publish(records::escalation(&alert, envelope, at_ms))
                            .await?;
                        self.metrics.escalations.inc(&[]);
                    }
                    self.keep(alert).await?;
                    changed = true;
                }
                self.outbox.seen(event).await?;
                Ok(changed)
            }
            _ => Ok(false),
        }
    }

    /// Queues every escalation due at `now_ms` (only once caught up with
    /// EVENTS, so every earlier escalation's echo has been applied), and
    /// forgets alerts past retention. Whether anything new was queued.
    pub async fn queue_due(&mut self, now_ms: i64) -> Result<bool, AlertsError> {
        let now = liaison_core::time::timestamp_now();
        let mut queued = false;
        let mut expired = vec![];
        for alert in self.alerts.values() {
            if now_ms.saturating_sub(alert.accepted_at_ms) > self.retention_ms {
                expired.push(alert.id.clone());
                continue;
            }
            let Some((n, due)) = self.policy.next_due(alert) else {
                continue;
            };
            if due > now_ms {
                continue;
            }
            let envelope = self.policy.envelope(alert, n, now);
            if !self.outbox.contains(&envelope.id) {
                info!(alert_id = %alert.id, escalation = n, unacknowledged = envelope.addressees.len(), "Alert escalation due");
                self.outbox.add(envelope).await?;
                queued = true;
            }
        }
        for id in expired {
            store::delete(&self.store, &id).await?;
            self.alerts.remove(&id);
        }
        self.count_outstanding();
        Ok(queued)
    }

    /// When the next escalation not yet queued is due (Unix ms), if one will be.
    pub fn next_due_ms(&self) -> Option<i64> {
        self.alerts
            .values()
            .filter_map(|a| {
                let (n, due) = self.policy.next_due(a)?;
                (!self.outbox.contains(&escalation_id(&a.id, n))).then_some(due)
            })
            .min()
    }

    /// Whether escalations wait to be raised (or to come back).
    pub fn has_pending(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// Raises what the outbox holds through the gateway's internal door.
    /// One the gateway refuses is dropped (the refusal is in the ledger) and
    /// its alert is not escalated again; one it cannot take now stays.
    pub async fn flush(&mut self, client: &async_nats::Client) -> Result<usize, AlertsError> {
        let before: Vec<(String, String)> = self
            .outbox
            .pending()
            .map(|e| (e.id.clone(), e.in_reply_to.clone()))
            .collect();
        let raised = self.outbox.flush(client).await?;
        for (id, alert_id) in before {
            if self.outbox.contains(&id) {
                continue;
            }
            let Some(mut alert) = self.alerts.get(&alert_id).cloned() else {
                continue;
            };
            error!(alert_id = %alert_id, envelope_id = %id, "Alert escalation refused; not escalated again");
            alert.escalation_refused = Some(id);
            self.keep(alert).await?;
        }
        Ok(raised)
    }
}
