//! The rights of the people the data is about (DPA 2018 Part 3, ss.46–48),
//! on an operator's signed request on `liaison.admin.subjects` (token `aud`
//! `liaison-admin`, as membership changes; body `{"action": "restrict" |
//! "unrestrict" | "erase", "token": SUBJECT_TOKEN, "reason": TEXT,
//! "purposes"?: [PURPOSE]}`). Every request is recorded in the ledger before
//! it takes effect.
//!
//! - `restrict` (s.47(2): restriction instead of erasure, where the data is
//!   needed as evidence): further shares naming the subject token are
//!   refused `policy_denied`, the reason naming the restriction, unless their
//!   purpose is one the restriction allows. Kept in the KV bucket
//!   `RESTRICTIONS`, which every gateway follows. `unrestrict` lifts it.
//! - `erase` (s.47(1)): the subject's data key is destroyed
//!   ([`liaison_runtime::seal`]), so everything about them that EVENTS and
//!   DELIVERY hold can no longer be read, wherever it is stored; the ledger,
//!   which holds no personal data, stays whole and shows the erasure.

use crate::Shared;
use crate::refusal::Refusal;
use futures_util::StreamExt as _;
use liaison_core::{NatsContext as _, subjects};
use liaison_proto::v1::{AuditRecord, Decision, Envelope, Operation};
use liaison_runtime::seal;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::RwLock;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The KV bucket of subjects whose data is restricted.
pub use liaison_runtime::provision::RESTRICTIONS_BUCKET as BUCKET;
/// Largest request read.
const MAX_REQUEST: usize = 8 * 1024;
/// Longest reason.
const MAX_REASON: usize = 500;

/// A subject's restriction in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restriction {
    pub reason: String,
    /// The operator who restricted it.
    pub by: String,
    /// Unix seconds.
    pub at: u64,
    /// Purposes shares may still have (e.g. a court's: evidence).
    pub purposes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    action: String,
    token: String,
    reason: String,
    #[serde(default)]
    purposes: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
struct Answer {
    ok: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    error: String,
    /// What was done, in words.
    #[serde(skip_serializing_if = "String::is_empty")]
    done: String,
}

/// Restrictions as this gateway knows them, by subject token.
pub struct Restrictions {
    kv: async_nats::jetstream::kv::Store,
    restricted: RwLock<HashMap<String, Restriction>>,
}

/// The KV key of a subject token's restriction.
fn key(token: &str) -> String {
    seal::subject_key(token)
}

impl Restrictions {
    pub async fn open(
        js: &async_nats::jetstream::Context,
    ) -> Result<Self, liaison_core::NatsError> {
        let kv = js
            .get_key_value(BUCKET)
            .await
            .nats(format!("KV bucket {BUCKET}"))?;
        Ok(Self {
            kv,
            restricted: RwLock::new(HashMap::new()),
        })
    }

    /// Refuses an envelope about a restricted subject, unless its purpose
    /// is one the restriction allows.
    pub fn check(&self, envelope: &Envelope) -> Result<(), Refusal> {
        let map = match self.restricted.read() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        if map.is_empty() {
            return Ok(());
        }
        for token in envelope.subject_tokens() {
            if let Some(r) = map.get(&key(&token))
                && !r.purposes.contains(&envelope.purpose)
            {
                let allowed = if r.purposes.is_empty() {
                    "no purpose".to_owned()
                } else {
                    format!("only the purposes {}", r.purposes.join(", "))
                };
                return Err(Refusal::PolicyDenied(format!(
                    "a subject of this envelope is restricted (DPA 2018 s.47(2)) by {}: {}; it may be shared for {allowed}",
                    r.by, r.reason
                )));
            }
        }
        Ok(())
    }

    fn apply(&self, key: String, restriction: Option<Restriction>) {
        let mut map = match self.restricted.write() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        match restriction {
            Some(r) => map.insert(key, r),
            None => map.remove(&key),
        };
    }

    /// Reads the bucket whole, then follows it until `shutdown`.
    pub async fn watch(&self, shutdown: CancellationToken) -> Result<(), liaison_core::NatsError> {
        let mut entries = self
            .kv
            .watch_all_from_revision(1)
            .await
            .nats("watch the restrictions bucket")?;
        loop {
            let entry = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                entry = entries.next() => entry,
            };
            let Some(entry) = entry else { return Ok(()) };
            let Ok(entry) = entry else { continue };
            let restriction = (entry.operation == async_nats::jetstream::kv::Operation::Put)
                .then(|| serde_json::from_slice::<Restriction>(&entry.value).ok())
                .flatten();
            self.apply(entry.key, restriction);
        }
    }
}

/// The ledger record of a request on a subject's data.
fn record(operator: &str, token: &str, code: &str, reason: String, at: u64) -> AuditRecord {
    AuditRecord {
        record_id: format!("subject:{code}:{token}:{at}"),
        operation: Operation::Erasure as i32,
        decision: Decision::Accepted as i32,
        code: code.into(),
        reason,
        author: operator.into(),
        subject_tokens: vec![token.into()],
        time: Some(liaison_core::time::timestamp_now()),
        service: "gateway".into(),
        ..Default::default()
    }
}

/// Answers one operator's request on `liaison.admin.subjects`.
pub async fn answer(shared: &Shared, message: async_nats::Message) {
    let Some(reply) = message.reply.clone() else {
        return;
    };
    let token = message
        .headers
        .as_ref()
        .and_then(|h| h.get(subjects::TOKEN_HEADER))
        .map(|v| v.as_str().to_owned());
    let answer = match act(shared, token.as_deref(), &message.payload).await {
        Ok(done) => Answer {
            ok: true,
            done,
            ..Answer::default()
        },
        Err(error) => {
            warn!(error = %error, "Subject rights request refused");
            Answer {
                error,
                ..Answer::default()
            }
        }
    };
    let body = serde_json::to_vec(&answer).unwrap_or_default();
    if let Err(e) = shared.client.publish(reply, body.into()).await {
        warn!(error = %e, "Subject rights answer not sent");
    }
}

async fn act(shared: &Shared, token: Option<&str>, body: &[u8]) -> Result<String, String> {
    if body.len() > MAX_REQUEST {
        return Err(format!("the request is over {MAX_REQUEST} bytes"));
    }
    let operator = shared.membership.operator(token)?;
    let request: Request = serde_json::from_slice(body).map_err(|e| {
        format!(
            "the request must be {{\"action\": \"restrict\"|\"unrestrict\"|\"erase\", \"token\": TOKEN, \"reason\": TEXT, \"purposes\"?: [PURPOSE]}} (line {} column {})",
            e.line(),
            e.column()
        )
    })?;
    let subject = request.token.as_str();
    if subject.is_empty()
        || subject.len() > 128
        || !subject
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':'))
    {
        return Err(
            "token must be a subject token: 1 to 128 of A-Z, a-z, 0-9, '_', '-' and ':'".into(),
        );
    }
    let reason = request.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON {
        return Err(format!("give a reason of 1 to {MAX_REASON} characters"));
    }
    let vocabulary = shared.policy();
    for purpose in &request.purposes {
        if !vocabulary.vocabulary().purposes.contains_key(purpose) {
            return Err(format!(
                "purpose {:?} is not in the vocabulary",
                purpose.chars().take(64).collect::<String>()
            ));
        }
    }
    let at = liaison_core::time::unix_now();
    let rights = &shared.restrictions;
    match request.action.as_str() {
        "restrict" => {
            let restriction = Restriction {
                reason: reason.to_owned(),
                by: operator.clone(),
                at,
                purposes: request.purposes.clone(),
            };
            let allowed = if restriction.purposes.is_empty() {
                "no further shares".to_owned()
            } else {
                format!("shares only for {}", restriction.purposes.join(", "))
            };
            publish(
                shared,
                record(
                    &operator,
                    subject,
                    "subject_restricted",
                    format!("restricted (s.47(2)): {allowed}; {reason}"),
                    at,
                ),
            )
            .await?;
            let value = serde_json::to_vec(&restriction).map_err(|e| e.to_string())?;
            rights
                .kv
                .put(key(subject), value.into())
                .await
                .map_err(|e| format!("the restrictions bucket: {e}"))?;
            rights.apply(key(subject), Some(restriction));
            info!(operator = %operator, "Subject restricted");
            Ok(format!("restricted: {allowed}"))
        }
        "unrestrict" => {
            publish(
                shared,
                record(
                    &operator,
                    subject,
                    "subject_unrestricted",
                    format!("restriction lifted: {reason}"),
                    at,
                ),
            )
            .await?;
            rights
                .kv
                .purge(key(subject))
                .await
                .map_err(|e| format!("the restrictions bucket: {e}"))?;
            rights.apply(key(subject), None);
            info!(operator = %operator, "Subject restriction lifted");
            Ok("restriction lifted".into())
        }
        "erase" => {
            let name = seal::subject_key(subject);
            publish(
                shared,
                record(
                    &operator,
                    subject,
                    "subject_erased",
                    format!(
                        "erased (s.47(1)): the subject's data key is destroyed, and everything shared about them that Liaison stores can no longer be read; {reason}"
                    ),
                    at,
                ),
            )
            .await?;
            let destroyed = shared
                .keys
                .destroy(&name)
                .await
                .map_err(|e| format!("the subject's data key: {e}"))?;
            info!(operator = %operator, destroyed, "Subject erased");
            Ok(if destroyed {
                "erased: the subject's data key is destroyed".into()
            } else {
                "recorded: Liaison held no data key for the subject (nothing stored about them)"
                    .into()
            })
        }
        other => Err(format!(
            "action {:?}: give one of restrict, unrestrict, erase",
            other.chars().take(32).collect::<String>()
        )),
    }
}

/// Recorded before it takes effect: no change without its record.
async fn publish(shared: &Shared, record: AuditRecord) -> Result<(), String> {
    shared
        .recorder
        .publish(&record)
        .await
        .map_err(|e| format!("the request's ledger record could not be stored: {e}"))
}
