//! The gateway's metrics: what was accepted, refused, delivered (by
//! recipient, and by sender and recipient: the flows the operator console
//! draws) and redacted, how long verdicts took, how long from acceptance to
//! each copy stored (end to end through the gateway), policy reloads, and how
//! many copies wait in each agency's DELIVERY consumer. Labels are agency ids
//! from the registry (or a Liaison service's sender id, for the events it
//! raises), refusal codes and message kinds only: an agency named on the
//! wire that the registry does not know is counted as `invalid`.

use crate::Shared;
use liaison_core::AgencyId;
use liaison_runtime::metrics::{Counter, Gauge, Histogram, Registry};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// Verdict time buckets, in seconds.
const VERDICT_BOUNDS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// Acceptance-to-delivery buckets, in seconds.
const E2E_BOUNDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
];

/// The label for an agency that is not (or not yet known to be) registered.
pub const INVALID_AGENCY: &str = "invalid";

/// Every gateway metric, registered in one [`Registry`].
pub struct Metrics {
    pub registry: Arc<Registry>,
    pub accepted: Counter,
    pub refused: Counter,
    pub deliveries: Counter,
    pub flows: Counter,
    pub redacted: Counter,
    pub e2e_seconds: Histogram,
    pub verdict_seconds: Histogram,
    pub policy_reloads: Counter,
    pub registry_changes: Counter,
    pub logins: Counter,
    pub agencies: Gauge,
    pub delivery_pending: Gauge,
    pub records_kept: Gauge,
    pub replicas: Gauge,
    pub records_dropped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        Self {
            accepted: r.counter(
                "liaison_gateway_envelopes_accepted_total",
                "Envelopes accepted (or re-sent duplicates), by sending agency and kind.",
                &["agency", "kind"],
            ),
            refused: r.counter(
                "liaison_gateway_envelopes_refused_total",
                "Envelopes refused, by sending agency (\"invalid\" if not registered) and refusal code.",
                &["agency", "code"],
            ),
            deliveries: r.counter(
                "liaison_gateway_deliveries_total",
                "Copies delivered to DELIVERY, by recipient and kind.",
                &["recipient", "kind"],
            ),
            flows: r.counter(
                "liaison_gateway_flows_total",
                "Copies delivered to DELIVERY, by sending agency (or Liaison service) and recipient.",
                &["sender", "recipient"],
            ),
            e2e_seconds: r.histogram(
                "liaison_gateway_end_to_end_seconds",
                "Time from an envelope's acceptance at ingress to each of its copies stored in DELIVERY.",
                E2E_BOUNDS,
            ),
            redacted: r.counter(
                "liaison_gateway_redacted_total",
                "Delivered copies with fields withheld, by recipient.",
                &["recipient"],
            ),
            verdict_seconds: r.histogram(
                "liaison_gateway_verdict_seconds",
                "Time from receiving an envelope to its verdict.",
                VERDICT_BOUNDS,
            ),
            registry_changes: r.counter(
                "liaison_gateway_registry_changes_total",
                "Changes to the live registry followed, by result (applied, refused: the registry in force kept).",
                &["result"],
            ),
            logins: r.counter(
                "liaison_gateway_nats_logins_total",
                "Agencies' NATS logins answered through the auth callout, by result (accepted, refused).",
                &["result"],
            ),
            agencies: r.gauge(
                "liaison_gateway_agencies",
                "Agencies in the live registry in force at this gateway.",
                &[],
            ),
            policy_reloads: r.counter(
                "liaison_gateway_policy_reloads_total",
                "Policy directory changes seen, by result (applied, refused).",
                &["result"],
            ),
            delivery_pending: r.gauge(
                "liaison_delivery_pending",
                "Copies in an agency's inbox it has not acknowledged (agencies active since the gateway started).",
                &["agency"],
            ),
            replicas: r.gauge(
                "liaison_gateway_replicas",
                "Gateway replicas answering the service API, among which agencies' rates are shared.",
                &[],
            ),
            records_kept: r.gauge(
                "liaison_gateway_records_kept",
                "Records of refusals and policy changes the store could not take yet, kept to store later.",
                &[],
            ),
            records_dropped: r.counter(
                "liaison_gateway_records_dropped_total",
                "Kept records dropped because too many were waiting (the store refused records for too long).",
                &[],
            ),
            registry: {
                liaison_runtime::discovery::info_gauge(&r, liaison_runtime::discovery::Member::Gateway);
                Arc::new(r)
            },
        }
    }
}

/// The label for an agency named by a request: its id if registered, else
/// [`INVALID_AGENCY`] (never an unvalidated string from the wire).
pub fn agency_label<'a>(shared: &Shared, agency: &'a str) -> &'a str {
    let registered = AgencyId::parse(agency)
        .ok()
        .is_some_and(|id| shared.registry().get(&id).is_some());
    if registered { agency } else { INVALID_AGENCY }
}

/// The label for the sender of an accepted envelope: a registered agency's
/// id, or a Liaison service's sender id (`liaison-linkage`, ...).
pub fn sender_label<'a>(shared: &Shared, sender: &'a str) -> &'a str {
    match liaison_core::system::Service::of_sender(sender) {
        Some(_) => sender,
        None => agency_label(shared, sender),
    }
}

/// Seconds from `since` (a protobuf timestamp) to now; `None` if `since`
/// is absent or in the future.
pub fn seconds_since(since: Option<&prost_types::Timestamp>) -> Option<f64> {
    let since = since?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    let then = since.seconds as f64 + f64::from(since.nanos) / 1e9;
    (now >= then).then_some(now - then)
}

/// Refreshes `liaison_delivery_pending` every `interval` until `shutdown`,
/// for the inboxes this gateway has written to or read from since it
/// started (the work grows with the agencies active, not those registered).
pub async fn watch_pending(shared: Arc<Shared>, interval: Duration, shutdown: CancellationToken) {
    loop {
        shared.inboxes.flush().await;
        let mut active = shared.sequencer.agencies();
        active.extend(shared.inboxes.agencies());
        active.sort();
        active.dedup();
        for agency in active {
            match liaison_runtime::inbox::backlog(&shared.js, &agency).await {
                Ok(backlog) => shared
                    .metrics
                    .delivery_pending
                    .set(&[agency.as_str()], backlog.waiting),
                Err(e) => debug!(agency = %agency, error = %e, "Inbox backlog not read"),
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
