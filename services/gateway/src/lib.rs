//! `liaison-gateway`: the only door for partner agencies.
//!
//! Owns authentication ([`auth`]), access policy ([`policy`]), redaction
//! ([`redact`]) and routing ([`router`]): an envelope arrives on an agency's
//! ingress subject ([`ingress`]), is checked, stored in EVENTS, and one copy
//! per permitted recipient, with the fields it may not see removed, goes to
//! DELIVERY. Every decision becomes a record for the audit ledger
//! ([`records`]). Agencies that do not speak NATS use the HTTPS door
//! ([`https`]), which takes envelopes through the same ingress path and reads
//! inboxes for them. It does not keep the ledger, nor case state.

pub mod auth;
pub mod batch;
pub mod callout;
pub mod candidates;
pub mod catalogue;
pub mod decode;
pub mod departures;
pub mod enrolment;
pub mod erasure;
pub mod events;
pub mod https;
pub mod inbox;
pub mod ingress;
pub mod limits;
pub mod live;
pub mod membership;
pub mod metrics;
pub mod policy;
pub mod query;
pub mod records;
pub mod redact;
pub mod refusal;
pub mod reload;
pub mod replay;
pub mod rights;
pub mod router;
pub mod scenarios;
pub mod sequencer;
pub mod spool;
pub mod validate;

use async_nats::jetstream::{self, consumer::PullConsumer};
use liaison_core::NatsContext as _;
use liaison_core::{AgencyId, subjects};
use liaison_runtime::config::Config;
use liaison_runtime::registry::Registry;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Why the gateway could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Registry(#[from] liaison_runtime::registry::RegistryError),
    #[error("{0}")]
    LiveRegistry(String),
    #[error(transparent)]
    Policy(#[from] policy::PolicyError),
    #[error("agency keys: {0}")]
    Keys(String),
    #[error("data keys: {0}")]
    DataKeys(String),
    #[error(transparent)]
    Nats(#[from] liaison_core::NatsError),
    #[error(transparent)]
    Participation(#[from] liaison_core::participation::ParticipationError),
    #[error(transparent)]
    Receipts(#[from] liaison_runtime::receipts::ReceiptError),
    #[error(transparent)]
    KeptRecords(#[from] spool::SpoolError),
    #[error("router stopped")]
    Router(#[source] router::RouteError),
    #[error(transparent)]
    Https(#[from] https::HttpsError),
    #[error(transparent)]
    Telemetry(#[from] liaison_runtime::ops::OpsError),
    #[error(transparent)]
    Discovery(#[from] liaison_runtime::discovery::DiscoveryError),
}

/// How often inbox backlogs are read, and acknowledgements the store
/// refused are written again.
const PENDING_REFRESH_SECS: u64 = 5;

/// How often the gateway replicas are counted (their agencies' rates shared).
const REPLICAS_REFRESH_SECS: u64 = 2;

/// What every gateway task shares.
pub struct Shared {
    pub config: Config,
    /// The registry, the policy set for it and the agencies' keys in force:
    /// replaced whole, in one step, by a policy reload ([`reload`]) or a
    /// change to the live registry ([`live`]).
    pub live: std::sync::RwLock<Arc<live::Live>>,
    /// Held while a change to `live` is built ([`Shared::change`]).
    pub changing: std::sync::Mutex<()>,
    pub participation: liaison_core::participation::Store,
    pub receipts: liaison_runtime::receipts::Store,
    pub limits: limits::Limits,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub recorder: records::Recorder,
    pub metrics: metrics::Metrics,
    /// Numbers and stores each recipient's copies.
    pub sequencer: sequencer::Sequencer,
    /// Accepted envelopes and their facts into EVENTS, by group commit.
    pub events: events::Events,
    /// Agencies' inboxes, read for them over NATS and HTTPS.
    pub inboxes: inbox::Inboxes,
    /// Seals what EVENTS and DELIVERY store, and opens it (ADR 0022).
    pub keys: liaison_runtime::seal::Keyring,
    /// Subjects whose data is restricted (DPA 2018 s.47(2)).
    pub restrictions: rights::Restrictions,
    /// Token ids bound where every gateway replica sees them.
    pub replays: replay::Replays,
    /// Agencies suspended by named operators, as every gateway applies them.
    pub membership: membership::Membership,
    /// Answers nats-server's auth callout and closes agencies' connections
    /// (`None`: the gateway was given no NATS password to derive its key from).
    pub callout: Option<callout::Callout>,
}

impl Shared {
    /// Closes `agency`'s open NATS connections (suspended, removed, or a NATS
    /// key retired): logged, never failing the change that asked for it.
    pub async fn close_connections(&self, agency: &AgencyId) {
        let Some(callout) = &self.callout else {
            return;
        };
        if let Err(e) = callout.close(agency).await {
            tracing::warn!(agency = %agency, error = %e, "Agency's NATS connections not closed");
        }
    }
}

impl Shared {
    /// Authenticates `agency` by `token` at this moment: verified here
    /// (cached after the first time), and, the first time this gateway sees
    /// the token, its `jti` bound to it for every replica ([`replay`]).
    pub async fn authenticate(
        &self,
        agency: &AgencyId,
        token: &str,
    ) -> Result<auth::Claims, refusal::Refusal> {
        // A revoked key first: its tokens may be in the verifier's cache.
        self.membership.check_key(agency, token)?;
        let verifier = self.live().verifier.clone();
        let (claims, fresh) =
            verifier.verify_fresh(agency, token, liaison_core::time::unix_now())?;
        if fresh && let Err(refused) = self.replays.claim(agency, &claims.jti, token).await {
            // Verified in full (and refused) again next time.
            verifier.forget(agency, token);
            return Err(refused);
        }
        Ok(claims)
    }

    /// The registry, policy and keys in force now (a cheap clone of an `Arc`).
    pub fn live(&self) -> Arc<live::Live> {
        match self.live.read() {
            Ok(live) => live.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Builds the next state from the one in force and puts it in force,
    /// in one step. Changes are made one at a time (a policy reload and a
    /// registry change never build on the same state and lose each other's
    /// work); requests keep reading the state in force meanwhile.
    pub fn change<T>(
        &self,
        build: impl FnOnce(&live::Live) -> Result<(live::Live, T), String>,
    ) -> Result<T, String> {
        let _one_at_a_time = match self.changing.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (next, out) = build(&self.live())?;
        let next = Arc::new(next);
        match self.live.write() {
            Ok(mut slot) => *slot = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        Ok(out)
    }

    /// The policy set in force now.
    pub fn policy(&self) -> Arc<policy::Policy> {
        self.live().policy.clone()
    }

    /// The registry in force now.
    pub fn registry(&self) -> Arc<Registry> {
        self.live().registry.clone()
    }
}

/// Ingress and the internal door, served together.
pub type Requests = futures_util::stream::Select<async_nats::Subscriber, async_nats::Subscriber>;

/// A gateway that has loaded its registry and policy, subscribed to ingress
/// and bound to its EVENTS consumer: ready to serve.
pub struct Gateway {
    shared: Arc<Shared>,
    requests: Requests,
    /// Operators' requests: membership changes (`liaison.admin.agencies`),
    /// inbox backlogs (`liaison.admin.inboxes`).
    admin: async_nats::Subscriber,
    /// The live registry, followed from where start-up read it.
    follower: liaison_runtime::live_registry::Follower,
    /// nats-server's authorization requests (agencies logging in).
    logins: Option<async_nats::Subscriber>,
    consumer: PullConsumer,
    door: Option<https::Door>,
    telemetry: Option<liaison_runtime::ops::Listener>,
    /// Set while it serves: what `/readyz` and the `status` endpoint report.
    ready: Arc<std::sync::atomic::AtomicBool>,
    discovery: liaison_runtime::discovery::Registration,
}

impl Gateway {
    /// Loads configuration, registry and policy (failing fast on any error),
    /// subscribes to ingress and binds the router's consumer.
    pub async fn start(config: Config, client: async_nats::Client) -> Result<Self, GatewayError> {
        let sealing =
            liaison_runtime::seal::load_kek(&config.data).map_err(GatewayError::DataKeys)?;
        Self::start_with(config, client, sealing).await
    }

    /// [`Gateway::start`], sealing as `sealing` says (a benchmark measures
    /// what sealing costs by starting one gateway that does not).
    pub async fn start_with(
        config: Config,
        client: async_nats::Client,
        sealing: liaison_runtime::seal::Sealing,
    ) -> Result<Self, GatewayError> {
        let js = jetstream::new(client.clone());
        let keys = liaison_runtime::seal::Keyring::open_store(&js, sealing)
            .await
            .map_err(|e| GatewayError::DataKeys(e.to_string()))?;
        let (registry, follower) = liaison_runtime::live_registry::Follower::open(&js)
            .await
            .map_err(GatewayError::LiveRegistry)?;
        let policy = policy::Policy::load(&config.paths.policies, &registry)?;
        let verifier =
            auth::Verifier::new(&registry, &config.gateway).map_err(GatewayError::Keys)?;
        let door = if config.https.enabled() {
            Some(https::Door::bind(&config.https).await?)
        } else {
            None
        };
        let telemetry = if config.telemetry.enabled() {
            Some(liaison_runtime::ops::Listener::bind(&config.telemetry.listen).await?)
        } else {
            None
        };
        let participation = liaison_core::participation::Store::open(&js).await?;
        let receipts = liaison_runtime::receipts::Store::open(&js).await?;
        let consumer: PullConsumer = js
            .get_consumer_from_stream(subjects::ROUTER_CONSUMER, subjects::EVENTS_STREAM)
            .await
            .nats(format!("EVENTS consumer {}", subjects::ROUTER_CONSUMER))?;
        let requests = client
            .queue_subscribe(subjects::INGRESS_ALL, subjects::GATEWAY_QUEUE.to_owned())
            .await
            .nats("subscribe to ingress")?;
        let internal = client
            .queue_subscribe(subjects::INTERNAL_ALL, subjects::GATEWAY_QUEUE.to_owned())
            .await
            .nats("subscribe to the internal door")?;
        let admin = client
            .queue_subscribe(subjects::ADMIN_ALL, subjects::GATEWAY_QUEUE.to_owned())
            .await
            .nats("subscribe to operators' requests")?;
        let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let discovery = liaison_runtime::discovery::Registration::start(
            &client,
            liaison_runtime::discovery::Member::Gateway,
            ready.clone(),
        )
        .await?;
        client.flush().await.nats("flush the subscriptions")?;
        let metrics = metrics::Metrics::new();
        let (spool, kept) = if config.gateway.kept_records.as_os_str().is_empty() {
            (None, Vec::new())
        } else {
            let (spool, kept) = spool::Spool::open(&config.gateway.kept_records)?;
            (Some(spool), kept)
        };
        let recorder = records::Recorder::new(
            js.clone(),
            metrics.records_kept.clone(),
            metrics.records_dropped.clone(),
            spool,
        );
        recorder.resume(kept);
        let sequencer = sequencer::Sequencer::open(&client).await?;
        let replays = replay::Replays::open(
            &js,
            config.gateway.max_token_lifetime_secs,
            config.gateway.clock_skew_secs,
        )
        .await?;
        let inboxes = inbox::Inboxes::open(
            &client,
            keys.clone(),
            std::time::Duration::from_secs(config.streams.ack_wait_secs),
        )
        .await?;
        let membership = membership::Membership::open(&js, &config).await?;
        let restrictions = rights::Restrictions::open(&js).await?;
        let (callout, logins) = if config.nats.password.expose().is_empty() {
            tracing::warn!(
                "No nats.password: this gateway does not answer the auth callout (agencies cannot log in through it)"
            );
            (None, None)
        } else {
            let system = liaison_core::connect::connect(
                &config.nats.url,
                &liaison_core::Credentials {
                    user: liaison_runtime::users::SYSTEM.to_owned(),
                    password: liaison_runtime::users::system_password(&config.nats.password),
                },
                &config.nats.tls(),
                "liaison-gateway-system",
            )
            .await
            .map_err(|e| GatewayError::LiveRegistry(format!("the system account: {e}")))?;
            // Auditors log in as themselves too; without the registry
            // (a gateway host without it) none can.
            let auditors = if config.audit.auditors.is_file() {
                Some(
                    liaison_runtime::auditors::Auditors::load(&config.audit.auditors)
                        .map_err(GatewayError::Keys)?,
                )
            } else {
                tracing::warn!(path = %config.audit.auditors.display(), "No auditors' registry: no auditor can log in to NATS");
                None
            };
            let callout = callout::Callout::new(&config.nats.password, Some(system), auditors)
                .map_err(GatewayError::Keys)?;
            (Some(callout), Some(callout::subscribe(&client).await?))
        };
        let shared = Arc::new(Shared {
            callout,
            membership,
            replays,
            sequencer,
            events: events::Events::start(
                client.clone(),
                std::time::Duration::from_secs(config.streams.duplicate_window_secs),
            ),
            inboxes,
            keys,
            restrictions,
            recorder,
            metrics,
            limits: limits::Limits::new(&registry, config.gateway.max_envelope_bytes),
            config,
            live: std::sync::RwLock::new(Arc::new(live::Live {
                registry: Arc::new(registry),
                policy: Arc::new(policy),
                verifier: Arc::new(verifier),
            })),
            changing: std::sync::Mutex::new(()),
            participation,
            receipts,
            client,
            js,
        });
        Ok(Self {
            shared,
            requests: futures_util::stream::select(requests, internal),
            admin,
            follower,
            logins,
            consumer,
            door,
            telemetry,
            ready,
            discovery,
        })
    }

    /// Where the HTTPS door listens, if it is open.
    pub fn https_addr(&self) -> Option<std::net::SocketAddr> {
        self.door.as_ref().map(https::Door::local_addr)
    }

    /// Where `/metrics`, `/healthz` and `/readyz` are served, if configured.
    pub fn telemetry_addr(&self) -> Option<std::net::SocketAddr> {
        self.telemetry
            .as_ref()
            .and_then(liaison_runtime::ops::Listener::local_addr)
    }

    /// Serves ingress, the HTTPS door (if configured) and routing until
    /// `shutdown`, then drains in-flight work.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), GatewayError> {
        let stop = shutdown.child_token();
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        reload::record_start(&self.shared, started).await;
        let reload_secs = self.shared.config.gateway.policy_reload_secs;
        let watcher = (reload_secs > 0).then(|| {
            tokio::spawn(reload::watch(
                self.shared.clone(),
                std::time::Duration::from_secs(reload_secs),
                stop.clone(),
            ))
        });
        let ingress = tokio::spawn(ingress::serve(
            self.shared.clone(),
            self.requests,
            stop.clone(),
        ));
        let door = self
            .door
            .map(|door| tokio::spawn(https::serve(self.shared.clone(), door, stop.clone())));
        let bound = self.ready;
        bound.store(true, std::sync::atomic::Ordering::Relaxed);
        let telemetry = self.telemetry.map(|listener| {
            let probe = liaison_runtime::ops::Probe {
                registry: self.shared.metrics.registry.clone(),
                client: self.shared.client.clone(),
                bound: bound.clone(),
            };
            tokio::spawn(listener.serve(probe, shutdown.child_token()))
        });
        let watched = {
            let shared = self.shared.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let closer = shared.clone();
                let close = move |agency: AgencyId| {
                    let shared = closer.clone();
                    tokio::spawn(async move { shared.close_connections(&agency).await });
                };
                if let Err(e) = shared.membership.watch(stop, close).await {
                    tracing::error!(error = %liaison_core::error::chain(&e), "Membership no longer followed");
                }
            })
        };
        let logins = self
            .logins
            .map(|logins| tokio::spawn(callout::serve(self.shared.clone(), logins, stop.clone())));
        let followed = tokio::spawn(live::follow(
            self.shared.clone(),
            self.follower,
            stop.clone(),
        ));
        let admin = {
            let shared = self.shared.clone();
            let stop = stop.clone();
            let mut admin = self.admin;
            tokio::spawn(async move {
                use futures_util::StreamExt as _;
                loop {
                    let message = tokio::select! {
                        () = stop.cancelled() => break,
                        message = admin.next() => message,
                    };
                    let Some(message) = message else { break };
                    // Answered only in the asker's inbox: never into a
                    // stream or bucket the gateway may write (ADR 0021).
                    if !message
                        .reply
                        .as_ref()
                        .is_some_and(|r| subjects::reply_is_an_inbox(r))
                    {
                        continue;
                    }
                    if message.subject.as_str() == subjects::ADMIN_INBOXES {
                        membership::answer_backlogs(&shared, message).await;
                    } else if message.subject.as_str() == subjects::ADMIN_SUBJECTS {
                        rights::answer(&shared, message).await;
                    } else {
                        membership::answer(&shared, message).await;
                    }
                }
            })
        };
        // Data keys destroyed by any gateway are forgotten here; keys wrapped
        // by a rotated-out key-encryption key are re-wrapped; keys whose
        // retention has ended are destroyed (ADR 0022).
        let forgotten = {
            let keys = self.shared.keys.clone();
            let stop = stop.clone();
            tokio::spawn(async move { keys.follow(stop).await })
        };
        let restricted = {
            let shared = self.shared.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                if let Err(e) = shared.restrictions.watch(stop).await {
                    tracing::error!(error = %liaison_core::error::chain(&e), "Restrictions no longer followed");
                }
            })
        };
        {
            let keys = self.shared.keys.clone();
            tokio::spawn(async move {
                if let Err(e) = keys.rewrap().await {
                    tracing::error!(error = %e, "Data keys not re-wrapped under the current key-encryption key");
                }
            });
        }
        let retention_secs = self.shared.config.data.retention_sweep_secs;
        let retention = (retention_secs > 0).then(|| {
            tokio::spawn(erasure::watch(
                self.shared.clone(),
                std::time::Duration::from_secs(retention_secs),
                stop.clone(),
            ))
        });
        let sweep_secs = self.shared.config.gateway.departures_sweep_secs;
        let departures = (sweep_secs > 0).then(|| {
            tokio::spawn(departures::watch(
                self.shared.clone(),
                std::time::Duration::from_secs(sweep_secs),
                stop.clone(),
            ))
        });
        let replicas = tokio::spawn(limits::watch_replicas(
            self.shared.clone(),
            std::time::Duration::from_secs(REPLICAS_REFRESH_SECS),
            stop.clone(),
        ));
        let pending = tokio::spawn(metrics::watch_pending(
            self.shared.clone(),
            std::time::Duration::from_secs(PENDING_REFRESH_SECS),
            stop.clone(),
        ));
        let routed = router::serve(self.shared.clone(), self.consumer, stop.clone()).await;
        bound.store(false, std::sync::atomic::Ordering::Relaxed);
        stop.cancel();
        self.discovery.stop().await;
        let _ = pending.await;
        let _ = replicas.await;
        let _ = watched.await;
        let _ = followed.await;
        if let Some(departures) = departures {
            let _ = departures.await;
        }
        if let Some(retention) = retention {
            let _ = retention.await;
        }
        let _ = forgotten.await;
        let _ = restricted.await;
        if let Some(logins) = logins {
            let _ = logins.await;
        }
        let _ = admin.await;
        if let Some(telemetry) = telemetry {
            telemetry.abort();
        }
        let _ = ingress.await;
        if let Some(watcher) = watcher {
            let _ = watcher.await;
        }
        if let Some(door) = door {
            let _ = door.await;
        }
        let _ = self.shared.client.flush().await;
        routed.map_err(GatewayError::Router)
    }
}

/// Starts a gateway and serves until `shutdown`.
pub async fn run(
    config: Config,
    client: async_nats::Client,
    shutdown: CancellationToken,
) -> Result<(), GatewayError> {
    Gateway::start(config, client).await?.run(shutdown).await
}

#[cfg(test)]
mod tests;
