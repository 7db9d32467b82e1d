//! Changes to the stores, on the record (docs/decisions/0021-a-rogue-agency-gets-nothing.md).
//!
//! The operator administers streams but may not read what they hold. A
//! stream's configuration can still send its messages somewhere the
//! operator can read (a `republish` to its inbox; another stream that
//! sources or mirrors it), and NATS permissions cannot tell that change
//! from an ordinary one. So every stream created, changed or deleted is a
//! ledger record (operation STORE_CHANGE): nats-server announces each on
//! `$JS.EVENT.ADVISORY.STREAM.<ACTION>.<STREAM>`, the audit service reads
//! the stream's configuration as it now is and records what routes
//! messages elsewhere, by name. The record's id is the advisory's, so audit
//! replicas record each change once.

use async_nats::jetstream;
use futures_util::StreamExt as _;
use liaison_core::subjects;
use liaison_proto::v1::{AuditRecord, Decision, Operation};
use prost::Message as _;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// nats-server's stream advisories (created, updated, deleted).
pub const ADVISORIES: &str = "$JS.EVENT.ADVISORY.STREAM.*.*";
/// Largest advisory read.
const MAX_ADVISORY: usize = 16 * 1024;

#[derive(Debug, Deserialize)]
struct Advisory {
    id: String,
    stream: String,
    action: String,
}

/// Records every stream change announced on `advisories` until `shutdown`;
/// first, every stream that routes its messages elsewhere as it stands
/// (a change made while the audit service was down sent its advisory to
/// no one).
pub async fn watch(
    js: jetstream::Context,
    mut advisories: async_nats::Subscriber,
    shutdown: CancellationToken,
) {
    survey(&js).await;
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => return,
            message = advisories.next() => match message { Some(m) => m, None => return },
        };
        if message.payload.len() > MAX_ADVISORY {
            warn!(
                bytes = message.payload.len(),
                "Stream advisory too large; not read"
            );
            continue;
        }
        let advisory: Advisory = match serde_json::from_slice(&message.payload) {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "Stream advisory not understood");
                continue;
            }
        };
        let record = record(&js, &advisory).await;
        if store(&js, &record).await {
            info!(stream = %advisory.stream, action = %advisory.action, code = %record.code, "Store change recorded");
        }
    }
}

/// Records each stream whose configuration sends its messages beyond it,
/// as it stands now. Its record id is the configuration's digest, so the
/// same exposure found at every start within DECISIONS' de-duplication
/// window is recorded once.
async fn survey(js: &jetstream::Context) {
    use futures_util::TryStreamExt as _;
    let streams: Vec<jetstream::stream::Info> = match js.streams().try_collect().await {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "Streams not surveyed at start");
            return;
        }
    };
    for info in streams {
        let routes = routes_elsewhere(&info.config);
        if routes.is_empty() {
            continue;
        }
        let stream: String = info.config.name.chars().take(64).collect();
        let reason = describe(&stream, "found at start", &info.config, &routes);
        let digest = {
            use sha2::Digest as _;
            hex::encode(&sha2::Sha256::digest(reason.as_bytes())[..16])
        };
        let record = AuditRecord {
            record_id: format!("store:survey:{digest}"),
            operation: Operation::StoreChange as i32,
            decision: Decision::Accepted as i32,
            code: "stream_routes_elsewhere".into(),
            reason: reason.chars().take(1000).collect(),
            time: Some(liaison_core::time::timestamp_now()),
            service: "audit".into(),
            ..Default::default()
        };
        if store(js, &record).await {
            warn!(stream = %stream, "A stream routes its messages elsewhere; recorded");
        }
    }
}

/// Publishes `record` to the ledger's intake; whether it was stored.
async fn store(js: &jetstream::Context, record: &AuditRecord) -> bool {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", record.record_id.as_str());
    let stored = async {
        js.publish_with_headers(
            subjects::decisions("audit"),
            headers,
            record.encode_to_vec().into(),
        )
        .await?
        .await
        .map(|_| ())
        .map_err(async_nats::Error::from)
    }
    .await;
    if let Err(e) = &stored {
        warn!(error = %e, code = %record.code, "Store change not recorded");
    }
    stored.is_ok()
}

/// The record of one change: the stream's configuration as it now is,
/// what in it routes messages elsewhere.
async fn record(js: &jetstream::Context, advisory: &Advisory) -> AuditRecord {
    let action = match advisory.action.as_str() {
        "create" => "stream_created",
        "modify" => "stream_updated",
        "delete" => "stream_deleted",
        _ => "stream_changed",
    };
    let stream: String = advisory.stream.chars().take(64).collect();
    let (code, reason) = if action == "stream_deleted" {
        (action, format!("stream {stream} deleted"))
    } else {
        match js.get_stream(&advisory.stream).await {
            Ok(mut s) => match s.info().await {
                Ok(info) => {
                    let routes = routes_elsewhere(&info.config);
                    let code = if routes.is_empty() {
                        action
                    } else {
                        "stream_routes_elsewhere"
                    };
                    (code, describe(&stream, action, &info.config, &routes))
                }
                Err(e) => (
                    action,
                    format!("stream {stream} ({action}); its configuration not read: {e}"),
                ),
            },
            Err(e) => (
                action,
                format!("stream {stream} ({action}); its configuration not read: {e}"),
            ),
        }
    };
    AuditRecord {
        record_id: format!("store:{}", advisory.id.chars().take(64).collect::<String>()),
        operation: Operation::StoreChange as i32,
        decision: Decision::Accepted as i32,
        code: code.into(),
        reason: reason.chars().take(1000).collect(),
        time: Some(liaison_core::time::timestamp_now()),
        service: "audit".into(),
        ..Default::default()
    }
}

/// What in a stream's configuration sends its messages beyond it.
pub fn routes_elsewhere(config: &jetstream::stream::Config) -> Vec<String> {
    let mut routes = Vec::new();
    if let Some(r) = &config.republish {
        routes.push(format!(
            "republishes {} to {}{}",
            r.source,
            r.destination,
            if r.headers_only {
                " (headers only)"
            } else {
                ""
            }
        ));
    }
    if let Some(m) = &config.mirror {
        routes.push(format!("mirrors {}", m.name));
    }
    for s in config.sources.iter().flatten() {
        routes.push(format!("sources {}", s.name));
    }
    routes
}

fn describe(
    stream: &str,
    action: &str,
    config: &jetstream::stream::Config,
    routes: &[String],
) -> String {
    let mut text = format!(
        "stream {stream} ({action}): subjects [{}], replicas {}, max age {} s",
        config.subjects.join(", "),
        config.num_replicas,
        config.max_age.as_secs()
    );
    if !routes.is_empty() {
        text.push_str("; ROUTES MESSAGES ELSEWHERE: ");
        text.push_str(&routes.join("; "));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_republished_or_sourced_stream_is_named() {
        let mut config = jetstream::stream::Config {
            name: "EVENTS".into(),
            subjects: vec!["liaison.events.>".into()],
            ..Default::default()
        };
        assert!(routes_elsewhere(&config).is_empty());
        config.republish = Some(jetstream::stream::Republish {
            source: "liaison.events.>".into(),
            destination: "_INBOX_operator.copy.>".into(),
            headers_only: false,
        });
        config.sources = Some(vec![jetstream::stream::Source {
            name: "DELIVERY".into(),
            ..Default::default()
        }]);
        let routes = routes_elsewhere(&config);
        assert_eq!(
            routes,
            [
                "republishes liaison.events.> to _INBOX_operator.copy.>",
                "sources DELIVERY"
            ]
        );
        let text = describe("EVENTS", "stream_updated", &config, &routes);
        assert!(text.contains("ROUTES MESSAGES ELSEWHERE"), "{text}");
    }
}
