//! Creating (or updating, idempotently) the streams, durable consumers and
//! KV buckets of a Liaison deployment, each with `[streams] replicas` copies (1 on one
//! server, 3 on a 3-node cluster; consumers and KV buckets follow). Run by the operator (`liaison up`, `liaison provision`):
//! services only bind to what exists, so their NATS users need no rights to
//! create or change streams.
//!
//! | stream | holds | guarantees |
//! |---|---|---|
//! | EVENTS | accepted envelopes (sealed: ADR 0022), each with its fact | de-duplicated on the envelope id; no delete, no purge: erased by destroying data keys |
//! | KV_KEYS | data keys, wrapped by a key-encryption key outside NATS | one value per key; a destroyed key is erased in place |
//! | DELIVERY | one redacted copy per recipient | each agency's inbox is a subject, numbered 1, 2, 3 …, read through the gateway: no object per agency (ADR 0019) |
//! | DECISIONS | decision records on their way to the ledger | de-duplicated on the record id, across restarts |
//! | LEDGER | the hash-chained audit log | no delete, no purge; one writer (expected last sequence) |
//! | CHECKPOINTS | signed checkpoints of the ledger's Merkle tree | no delete, no purge |

use crate::config::StreamsConfig;
use async_nats::jetstream::{self, consumer, stream};
use liaison_core::subjects as s;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("cannot provision {what}: {reason}")]
pub struct ProvisionError {
    pub what: String,
    pub reason: String,
}

fn fail(what: impl Into<String>) -> impl FnOnce(String) -> ProvisionError {
    let what = what.into();
    move |reason| ProvisionError { what, reason }
}

/// The reason a stream was refused, naming `streams.replicas` when more than
/// one replica was asked for (the usual cause: fewer JetStream servers).
fn with_replicas(settings: &StreamsConfig, error: impl std::fmt::Display) -> String {
    if settings.replicas > 1 {
        format!(
            "{error} (streams.replicas = {}: needs a cluster of at least {} JetStream servers)",
            settings.replicas, settings.replicas
        )
    } else {
        error.to_string()
    }
}

/// The configuration of each Liaison stream.
pub fn stream_configs(settings: &StreamsConfig) -> Vec<stream::Config> {
    let dedup = Duration::from_secs(settings.duplicate_window_secs);
    let base = |name: &str, subject: &str, description: &str| stream::Config {
        name: name.to_owned(),
        subjects: vec![subject.to_owned()],
        description: Some(description.to_owned()),
        storage: stream::StorageType::File,
        num_replicas: settings.replicas,
        duplicate_window: dedup,
        ..Default::default()
    };
    vec![
        stream::Config {
            deny_delete: true,
            deny_purge: true,
            // Group commits: the envelopes a gateway accepted together,
            // each sealed whole beside its fact (ADR 0021, 0024).
            ..base(
                s::EVENTS_STREAM,
                s::COMMITS,
                "Accepted envelopes, in group commits",
            )
        },
        stream::Config {
            max_age: Duration::from_secs(settings.delivery_max_age_days * 24 * 3600),
            // Inboxes are read by subject with batched direct gets, and the
            // copies for one recipient that are ready together are stored as
            // one atomic batch (ADR 0019).
            allow_direct: true,
            allow_atomic_publish: true,
            ..base(
                s::DELIVERY_STREAM,
                s::DELIVERY_ALL,
                "Redacted copies per recipient",
            )
        },
        stream::Config {
            // Kept for twice the de-duplication window, not removed once
            // chained: nats-server rebuilds its de-duplication table from the
            // stored messages when it restarts, so a record re-published after
            // a restart (a sender's retry) must still be there to be recognised.
            max_age: dedup * 2,
            ..base(
                s::DECISIONS_STREAM,
                s::DECISIONS_ALL,
                "Decision records bound for the ledger",
            )
        },
        stream::Config {
            deny_delete: true,
            deny_purge: true,
            allow_direct: true,
            // No longer used by the writer (each block is one message, stored
            // whole or not at all); left on so that provisioning does not change
            // the configuration of existing LEDGER streams.
            allow_atomic_publish: true,
            duplicate_window: Duration::from_secs(120),
            ..base(
                s::LEDGER_STREAM,
                s::LEDGER_ENTRIES,
                "Hash-chained audit ledger",
            )
        },
        stream::Config {
            deny_delete: true,
            deny_purge: true,
            allow_direct: true,
            ..base(
                s::CHECKPOINTS_STREAM,
                s::LEDGER_CHECKPOINTS,
                "Signed checkpoints of the ledger",
            )
        },
    ]
}

fn durable(
    settings: &StreamsConfig,
    name: &str,
    filter: Option<String>,
    max_ack_pending: i64,
) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(name.to_owned()),
        filter_subject: filter.unwrap_or_default(),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: Duration::from_secs(settings.ack_wait_secs),
        max_ack_pending,
        ..Default::default()
    }
}

/// The KV bucket a service keeps its state in (rebuildable from EVENTS).
pub fn service_bucket(
    service: liaison_core::system::Service,
    replicas: usize,
) -> async_nats::jetstream::kv::Config {
    async_nats::jetstream::kv::Config {
        bucket: service.bucket().to_owned(),
        description: format!(
            "State of the {} service, folded from EVENTS",
            service.name()
        ),
        history: 1,
        num_replicas: replicas.max(1),
        max_value_size: 1024 * 1024,
        ..Default::default()
    }
}

/// The KV bucket in which gateways bind each token's `jti` to the token, so
/// that a replay is caught whichever replica it reaches
/// (`liaison_gateway::replay`).
pub const JTI_BUCKET: &str = "JTI";
/// How long a binding is kept: longer than any token may live
/// (`gateway.max_token_lifetime_secs` plus twice the clock skew, which the
/// gateway checks at start).
pub const JTI_KEEP: Duration = Duration::from_secs(2 * 3600);

/// The `JTI` bucket's configuration.
pub fn jti_bucket(replicas: usize) -> async_nats::jetstream::kv::Config {
    async_nats::jetstream::kv::Config {
        bucket: JTI_BUCKET.to_owned(),
        description: "Token ids bound to their tokens, shared by the gateways".to_owned(),
        history: 1,
        max_age: JTI_KEEP,
        max_value_size: 128,
        num_replicas: replicas.max(1),
        ..Default::default()
    }
}

/// The KV bucket of agencies' membership status (suspended, resumed), which
/// every gateway watches (`liaison_gateway::membership`).
pub const MEMBERSHIP_BUCKET: &str = "MEMBERSHIP";

/// The `MEMBERSHIP` bucket's configuration: every change kept.
pub fn membership_bucket(replicas: usize) -> async_nats::jetstream::kv::Config {
    async_nats::jetstream::kv::Config {
        bucket: MEMBERSHIP_BUCKET.to_owned(),
        description: "Agencies suspended or resumed, by named operators".to_owned(),
        history: 64,
        max_value_size: 4096,
        num_replicas: replicas.max(1),
        ..Default::default()
    }
}

/// The KV bucket of subjects whose data is restricted (DPA 2018 s.47(2)),
/// which every gateway follows (`liaison_gateway::rights`).
pub const RESTRICTIONS_BUCKET: &str = "RESTRICTIONS";

/// The `RESTRICTIONS` bucket's configuration: every change kept.
pub fn restrictions_bucket(replicas: usize) -> async_nats::jetstream::kv::Config {
    async_nats::jetstream::kv::Config {
        bucket: RESTRICTIONS_BUCKET.to_owned(),
        description: "Subjects whose data is restricted, by named operators".to_owned(),
        history: 16,
        max_value_size: 4096,
        num_replicas: replicas.max(1),
        ..Default::default()
    }
}

/// The KV bucket of inbox positions: per agency, the copies it has
/// acknowledged (through a number, and those above it). Gateways write it
/// by compare-and-set on the key's revision, so two never lose each
/// other's acknowledgements.
pub fn inbox_bucket(replicas: usize) -> async_nats::jetstream::kv::Config {
    async_nats::jetstream::kv::Config {
        bucket: s::INBOX_BUCKET.to_owned(),
        description: "Inbox positions: what each agency has acknowledged".to_owned(),
        history: 1,
        num_replicas: replicas.max(1),
        max_value_size: 256 * 1024,
        ..Default::default()
    }
}

/// Creates or updates every stream, the services' consumers and the KV
/// buckets. Nothing here grows with the registry: an agency's inbox is a
/// subject of DELIVERY and a key of INBOX written when it first
/// acknowledges (ADR 0019).
///
/// Seeds the live registry (`REGISTRY`) from `registry` if it is empty
/// ([`crate::live_registry::seed`]); if not, the live registry stays as
/// operators changed it.
pub async fn provision(
    js: &jetstream::Context,
    settings: &StreamsConfig,
    registry: &crate::registry::Registry,
) -> Result<crate::live_registry::Seeded, ProvisionError> {
    for config in stream_configs(settings) {
        let name = config.name.clone();
        js.create_or_update_stream(config)
            .await
            .map_err(|e| fail(format!("stream {name}"))(with_replicas(settings, e)))?;
    }
    js.create_key_value(liaison_core::participation::bucket_config(
        settings.replicas,
    ))
    .await
    .map_err(|e| {
        fail(format!("KV bucket {}", liaison_core::participation::BUCKET))(e.to_string())
    })?;
    // Receipts are kept as long as the envelopes (no age limit): a
    // correction or an erasure reaches every earlier recipient for as long
    // as it may hold the data. Updated in place on a deployment provisioned
    // when they expired with the copies.
    js.create_or_update_key_value(crate::receipts::bucket_config(
        settings.replicas,
        Duration::ZERO,
    ))
    .await
    .map_err(|e| fail(format!("KV bucket {}", crate::receipts::BUCKET))(e.to_string()))?;
    js.create_key_value(inbox_bucket(settings.replicas))
        .await
        .map_err(|e| fail(format!("KV bucket {}", s::INBOX_BUCKET))(e.to_string()))?;
    js.create_key_value(jti_bucket(settings.replicas))
        .await
        .map_err(|e| fail(format!("KV bucket {JTI_BUCKET}"))(e.to_string()))?;
    js.create_key_value(membership_bucket(settings.replicas))
        .await
        .map_err(|e| fail(format!("KV bucket {MEMBERSHIP_BUCKET}"))(e.to_string()))?;
    js.create_key_value(restrictions_bucket(settings.replicas))
        .await
        .map_err(|e| fail(format!("KV bucket {RESTRICTIONS_BUCKET}"))(e.to_string()))?;
    js.create_or_update_stream(crate::seal::stream_config(settings.replicas))
        .await
        .map_err(|e| fail(format!("KV bucket {}", crate::seal::BUCKET))(e.to_string()))?;
    for service in liaison_core::system::Service::ALL {
        js.create_key_value(service_bucket(service, settings.replicas))
            .await
            .map_err(|e| fail(format!("KV bucket {}", service.bucket()))(e.to_string()))?;
    }
    let consumers = vec![
        (
            s::EVENTS_STREAM,
            durable(
                settings,
                s::ROUTER_CONSUMER,
                Some(s::COMMITS.to_owned()),
                256,
            ),
        ),
        // The ledger writer appends in source order, in batches of up to
        // 1,000, and reads ahead while it appends: a batch being gathered,
        // two waiting, one staged, one being stored.
        (
            s::DECISIONS_STREAM,
            durable(settings, s::LEDGER_WRITER_CONSUMER, None, 5_000),
        ),
    ];
    for (stream_name, config) in consumers {
        let what = format!(
            "consumer {stream_name}/{}",
            config.durable_name.clone().unwrap_or_default()
        );
        js.create_consumer_on_stream(config, stream_name)
            .await
            .map_err(|e| fail(what)(e.to_string()))?;
    }
    crate::live_registry::seed(js, registry, settings.replicas)
        .await
        .map_err(|e| fail(format!("KV bucket {}", crate::live_registry::BUCKET))(e.to_string()))
}
