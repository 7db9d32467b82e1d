//! Discovery: each Liaison service registers with the NATS service API
//! (`$SRV.PING`, `$SRV.INFO`, `$SRV.STATS`, what `nats micro ls` asks), under
//! its name and the release's version, with its request/reply endpoints and a
//! `status` endpoint (`liaison.status.<service>`) that answers whether it is
//! ready. It owns the names and the registration; what a service's own
//! endpoints do is the service's business, and NATS permissions
//! ([`crate::users`]) let each service answer only its own names.
//!
//! A status answer holds the service's name, version and readiness, never
//! anything about an envelope or a case.

use async_nats::service::{self, ServiceExt as _};
use futures_util::StreamExt as _;
use liaison_core::subjects;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The version every service registers with (the workspace's).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A Liaison service that registers with the NATS service API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Member {
    Gateway,
    Audit,
    Cases,
    Linkage,
    Alerts,
}

impl Member {
    pub const ALL: [Member; 5] = [
        Member::Gateway,
        Member::Audit,
        Member::Cases,
        Member::Linkage,
        Member::Alerts,
    ];

    /// Its short name: `gateway`, `audit`, ...
    pub fn name(self) -> &'static str {
        match self {
            Member::Gateway => "gateway",
            Member::Audit => "audit",
            Member::Cases => "cases",
            Member::Linkage => "linkage",
            Member::Alerts => "alerts",
        }
    }

    /// The name it registers under: `liaison-gateway`, ...
    pub fn service_name(self) -> &'static str {
        match self {
            Member::Gateway => "liaison-gateway",
            Member::Audit => "liaison-audit",
            Member::Cases => "liaison-cases",
            Member::Linkage => "liaison-linkage",
            Member::Alerts => "liaison-alerts",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Member::Gateway => {
                "The only door for partner agencies: authentication, policy, redaction, routing"
            }
            Member::Audit => {
                "The tamper-evident audit ledger: hash chain, Merkle tree, signed checkpoints"
            }
            Member::Cases => {
                "The case record: lifecycle, participation, priorities, reviews, requests"
            }
            Member::Linkage => {
                "The pseudonymous subject index: re-engagement and duplicate-subject matches"
            }
            Member::Alerts => {
                "Business alerts: acknowledgements counted, the unacknowledged escalated"
            }
        }
    }

    /// Its `status` endpoint's subject.
    pub fn status_subject(self) -> String {
        subjects::status(self.name())
    }

    /// What its NATS user subscribes to for discovery: its service API
    /// names and its status endpoint.
    pub fn subscriptions(self) -> Vec<String> {
        let mut all = subjects::service_api(self.service_name());
        all.push(self.status_subject());
        all
    }
}

/// Registers `liaison_service_info{service, version}` (always 1) in a
/// service's metrics: what a dashboard's "service up" panel counts.
pub fn info_gauge(registry: &crate::metrics::Registry, member: Member) {
    registry
        .gauge(
            "liaison_service_info",
            "Always 1: the service and the version it runs.",
            &["service", "version"],
        )
        .set(&[member.name(), VERSION], 1);
}

/// What the `status` endpoint answers (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub service: String,
    pub version: String,
    pub ready: bool,
}

/// Why a service could not register.
#[derive(Debug, thiserror::Error)]
#[error("NATS service API registration of {service}: {reason}")]
pub struct DiscoveryError {
    pub service: &'static str,
    pub reason: String,
}

/// A service registered with the NATS service API; [`Registration::stop`]
/// takes it away (dropping the connection does too).
pub struct Registration {
    member: Member,
    service: service::Service,
    status: tokio::task::JoinHandle<()>,
}

impl Registration {
    /// Registers `member` and serves its `status` endpoint until
    /// [`stop`](Self::stop); `ready` is what it reports.
    pub async fn start(
        client: &async_nats::Client,
        member: Member,
        ready: Arc<AtomicBool>,
    ) -> Result<Self, DiscoveryError> {
        let fail = |e: async_nats::Error| DiscoveryError {
            service: member.service_name(),
            reason: e.to_string(),
        };
        let service = client
            .service_builder()
            .description(member.description())
            .start(member.service_name(), VERSION)
            .await
            .map_err(fail)?;
        let mut endpoint = service
            .endpoint_builder()
            .name("status")
            .add(member.status_subject())
            .await
            .map_err(fail)?;
        let status = tokio::spawn(async move {
            while let Some(request) = endpoint.next().await {
                let answer = Status {
                    service: member.service_name().to_owned(),
                    version: VERSION.to_owned(),
                    ready: ready.load(Ordering::Relaxed),
                };
                let body = serde_json::to_vec(&answer).unwrap_or_default();
                if let Err(e) = request.respond(Ok(body.into())).await {
                    tracing::debug!(error = %e, "Status not answered");
                }
            }
        });
        Ok(Self {
            member,
            service,
            status,
        })
    }

    /// Adds a request/reply endpoint `name` on `subject` (queue group `q`,
    /// so instances of the service share its requests).
    pub async fn endpoint(
        &self,
        name: &str,
        subject: &str,
    ) -> Result<service::endpoint::Endpoint, DiscoveryError> {
        self.service
            .endpoint_builder()
            .name(name)
            .add(subject)
            .await
            .map_err(|e| DiscoveryError {
                service: self.member.service_name(),
                reason: format!("endpoint {name} on {subject}: {e}"),
            })
    }

    /// Stops answering discovery and the status endpoint.
    pub async fn stop(self) {
        self.status.abort();
        let _ = self.service.stop().await;
    }
}
