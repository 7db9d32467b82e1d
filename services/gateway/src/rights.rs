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
    /// With `erase`: the envelopes about the subject (`SENDER/ID`, from the
    /// ledger), whose recipients are told (s.48).
    #[serde(default)]
    envelopes: Vec<String>,
}

/// The most envelopes one erasure names.
const MAX_ENVELOPES: usize = 10_000;
/// The sender of Liaison's own notices.
pub const NOTICE_SENDER: &str = "liaison-gateway";

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
        liaison_runtime::consume::follow_bucket(&self.kv, "restrictions", &shutdown, |entry| {
            let restriction = (entry.operation == async_nats::jetstream::kv::Operation::Put)
                .then(|| serde_json::from_slice::<Restriction>(&entry.value).ok())
                .flatten();
            self.apply(entry.key, restriction);
        })
        .await
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
            let told = tell(shared, &operator, subject, &request.envelopes, at).await?;
            info!(operator = %operator, destroyed, told = told.len(), "Subject erased");
            let told = if told.is_empty() {
                "no earlier recipient to tell".to_owned()
            } else {
                format!("told {}", told.join(", "))
            };
            Ok(if destroyed {
                format!("erased: the subject's data key is destroyed; {told}")
            } else {
                format!(
                    "recorded: Liaison held no data key for the subject (nothing stored about them); {told}"
                )
            })
        }
        other => Err(format!(
            "action {:?}: give one of restrict, unrestrict, erase",
            other.chars().take(32).collect::<String>()
        )),
    }
}

/// Tells every agency that received one of `envelopes` (by RECEIPTS, the
/// gateway's own record of who received what) that the subject's data is
/// erased (s.48): one `erasure_required` notice each, in its inbox, naming
/// the envelopes it received. Each recipient confirms with an
/// `erasure_confirmed` in reply to each envelope (purpose
/// `data-subject-rights`, legal basis `DPA-2018-s48`: clause
/// ISA-ACCURACY-01/erased-on-notice), which reaches the share's sender, is
/// recorded, and `liaison subject report` shows under the share. The recipients told,
/// in order.
async fn tell(
    shared: &Shared,
    operator: &str,
    subject: &str,
    envelopes: &[String],
    at: u64,
) -> Result<Vec<String>, String> {
    use liaison_proto::v1::envelope::Body;
    use liaison_proto::v1::{Delivery, EnvelopeAccepted, ErasureRequired, Route};
    use prost::Message as _;
    if envelopes.len() > MAX_ENVELOPES {
        return Err(format!(
            "{} envelopes named: at most {MAX_ENVELOPES}",
            envelopes.len()
        ));
    }
    let mut received: std::collections::BTreeMap<liaison_core::AgencyId, Vec<String>> =
        std::collections::BTreeMap::new();
    for scoped in envelopes {
        let Some((sender, id)) = scoped.split_once('/') else {
            return Err(format!(
                "envelope {:?} is not SENDER/ID",
                scoped.chars().take(200).collect::<String>()
            ));
        };
        let receipts = shared
            .receipts
            .get(id)
            .await
            .map_err(|e| format!("the receipts of {scoped}: {e}"))?;
        for receipt in receipts.into_iter().filter(|r| r.sender.as_str() == sender) {
            for recipient in receipt.recipients {
                let ids = received.entry(recipient).or_default();
                if !ids.contains(scoped) {
                    ids.push(scoped.clone());
                }
            }
        }
    }
    let now = liaison_core::time::unix_now();
    let keep = shared.config.streams.delivery_max_age_days * 86_400;
    let until = [seal::until_key(seal::retained_until(now, keep))];
    let mut told = Vec::new();
    for (n, (recipient, ids)) in received.into_iter().enumerate() {
        let notice = Envelope {
            id: format!("erasure-{at}-{n}"),
            sender_agency: NOTICE_SENDER.into(),
            author: operator.into(),
            sent_at: Some(liaison_core::time::timestamp_now()),
            classification: liaison_proto::v1::Classification::Official as i32,
            purpose: "data-subject-rights".into(),
            legal_basis: "DPA-2018-s48".into(),
            body: Some(Body::ErasureRequired(ErasureRequired {
                subject_token: subject.into(),
                reason_code: "subject_erased".into(),
                envelope_ids: ids,
            })),
            ..Envelope::default()
        };
        let route = Route {
            recipient: recipient.to_string(),
            withheld_labels: vec![],
            policy_ids: vec!["DPA-2018-s48".into()],
        };
        let accepted = EnvelopeAccepted {
            envelope: Some(notice.clone()),
            accepted_at: Some(liaison_core::time::timestamp_now()),
            token_subject: operator.into(),
            policy_ids: route.policy_ids.clone(),
            routes: vec![route.clone()],
        };
        // Its disclosure recorded first: no copy without its record.
        publish(shared, crate::records::disclosure(&accepted, &route, &[])).await?;
        let delivery = Delivery {
            envelope: Some(notice.clone()),
            recipient: recipient.to_string(),
            withheld_labels: vec![],
            policy_ids: route.policy_ids.clone(),
            accepted_at: accepted.accepted_at,
        };
        let scoped_id = liaison_core::ids::scoped_id(NOTICE_SENDER, &notice.id);
        // Sealed under the copies' retention only: the subject's key is gone.
        let sealed = shared
            .keys
            .seal(
                &until,
                &subjects::copy_sealed_to(&recipient, &scoped_id),
                &delivery.encode_to_vec(),
            )
            .await
            .map_err(|e| format!("the notice to {recipient}: {e}"))?;
        let pack = liaison_proto::v1::CopyPack {
            copies: vec![liaison_proto::v1::PackedCopy {
                scoped_id: scoped_id.clone(),
                copy: sealed.to_vec(),
                ..Default::default()
            }],
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("{scoped_id}:{recipient}").as_str());
        shared
            .sequencer
            .publish(
                &recipient,
                subjects::copies(&recipient),
                headers,
                pack.encode_to_vec().into(),
                1,
            )
            .await
            .map_err(|e| format!("the notice to {recipient}: {e}"))?;
        shared.inboxes.wake(&recipient);
        told.push(recipient.to_string());
    }
    Ok(told)
}

/// Recorded before it takes effect: no change without its record.
async fn publish(shared: &Shared, record: AuditRecord) -> Result<(), String> {
    shared
        .recorder
        .publish(&record)
        .await
        .map_err(|e| format!("the request's ledger record could not be stored: {e}"))
}
